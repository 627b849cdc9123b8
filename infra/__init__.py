"""kafka-log-cluster: node specs -> plan -> rendered, checked configs -> provisioning."""
