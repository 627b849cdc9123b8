"""Operations on deployments: the CI pipeline, teardown and the label sweeper."""
