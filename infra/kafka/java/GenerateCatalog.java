// Prints the broker config catalogue (JSON) of the Kafka release on the classpath, read from
// Kafka's own ConfigDef at run time, for infra/kafka/catalog.py:
//   java -cp 'LIBS/*' infra/kafka/java/GenerateCatalog.java > kafka-broker-configs-X.Y.json
// Release-specific classes are reached by reflection so that one source file compiles
// against every release (3.9, 4.x).

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Field;
import java.lang.reflect.Member;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import kafka.server.KafkaConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.ConfigKey;
import org.apache.kafka.server.config.AbstractKafkaConfig;

public class GenerateCatalog {
    private static final String CONFIG_DEF = "org/apache/kafka/common/config/ConfigDef";
    // GzipCompression's level validator (a lambda or anonymous class) only says what it
    // accepts in its toString, e.g. "[1,...,9] or -1".
    private static final Pattern BETWEEN_OR_VALUE =
            Pattern.compile("\\[(-?\\d+),\\.\\.\\.,(-?\\d+)] or (-?\\d+)");
    // ConfigDef groups of Kafka 3.9 that only one metadata mode reads.
    private static final Set<String> ZK_GROUPS = Set.of("ZkConfigs");
    private static final Set<String> KRAFT_GROUPS = Set.of("KRaftConfigs", "QuorumConfig", "MetadataLogConfig");
    // Keys whose mode Kafka 3.9 decides in code rather than by ConfigDef group.
    private static final Map<String, String> MODE_BY_CODE = Map.ofEntries(
            // Only the ZooKeeper-mode KafkaServer/KafkaController read these;
            // KafkaConfig.validateValues rejects control.plane.listener.name in KRaft.
            Map.entry("broker.id.generation.enable", "zk_only"),
            Map.entry("reserved.broker.max.id", "zk_only"),
            Map.entry("control.plane.listener.name", "zk_only"),
            Map.entry("controlled.shutdown.max.retries", "zk_only"),
            Map.entry("controlled.shutdown.retry.backoff.ms", "zk_only"),
            Map.entry("leader.imbalance.per.broker.percentage", "zk_only"),
            // KRaft only checks it is >= 3.0-IV1, warns, and uses metadata.version instead.
            Map.entry("inter.broker.protocol.version", "zk_only"),
            // KRaftConfigs defines the migration switches, but ZooKeeper brokers read them too.
            Map.entry("zookeeper.metadata.migration.enable", "both"),
            Map.entry("zookeeper.metadata.migration.min.batch.size", "both"));

    /** A ConfigDef that AbstractKafkaConfig merges, and where it lives. */
    private record Group(Class<?> owner, String label, ConfigDef def) {}

    public static void main(String[] args) throws Exception {
        ConfigDef merged = KafkaConfig.configDef();
        List<Group> groups = mergedGroups();
        Map<String, Group> sourceOf = sourceOfEachKey(groups);
        boolean hasZooKeeperMode = groups.stream().anyMatch(g -> ZK_GROUPS.contains(g.owner.getSimpleName()));
        Map<String, String> dynamicModes = dynamicUpdateModes();

        Map<String, Object> configs = new TreeMap<>();
        int internal = 0;
        for (ConfigKey key : merged.configKeys().values()) {
            Group group = sourceOf.get(key.name);
            Map<String, Object> entry = new TreeMap<>();
            entry.put("type", key.type.name());
            entry.put("default", jsonDefault(key));
            entry.put("validator", validator(key, group));
            entry.put("importance", key.importance.name().toLowerCase(Locale.ROOT));
            entry.put("required", !key.hasDefault());
            entry.put("internal", key.internalConfig);
            entry.put("dynamic", dynamicModes.getOrDefault(key.name, "read-only"));
            entry.put("documentation", key.documentation == null ? null : key.documentation.trim().replaceAll("\\s+", " "));
            if (group != null) entry.put("source", group.label);
            if (hasZooKeeperMode) entry.put("mode", mode(key.name, group));
            configs.put(key.name, entry);
            if (key.internalConfig) internal++;
        }

        Map<String, Object> catalogue = new TreeMap<>();
        catalogue.put("kafka_version", kafkaVersion());
        catalogue.put("generated_by", "infra/kafka/java/GenerateCatalog.java");
        catalogue.put("config_count", configs.size());
        catalogue.put("internal_count", internal);
        catalogue.put("configs", configs);
        StringBuilder out = new StringBuilder();
        writeJson(out, catalogue, 0);
        System.out.print(out.append('\n'));
    }

    /**
     * The ConfigDefs AbstractKafkaConfig.CONFIG_DEF is merged from. The list
     * changes between releases and is only written in its static initializer, so read the
     * static ConfigDef fields and no-argument ConfigDef methods its class file refers to.
     */
    private static List<Group> mergedGroups() throws Exception {
        List<Group> groups = new ArrayList<>();
        String self = AbstractKafkaConfig.class.getName().replace('.', '/');
        try (InputStream raw = AbstractKafkaConfig.class.getResourceAsStream("AbstractKafkaConfig.class")) {
            for (String[] ref : configDefRefs(new DataInputStream(raw))) {
                String owner = ref[0], name = ref[1];
                if (owner.equals(self)) continue;
                Class<?> cls = Class.forName(owner.replace('/', '.'));
                boolean isField = ref[2].startsWith("L");
                Member member = isField ? cls.getField(name) : cls.getMethod(name);
                if (!Modifier.isStatic(member.getModifiers())) continue;
                ConfigDef def = (ConfigDef) (isField ? ((Field) member).get(null) : ((Method) member).invoke(null));
                String label = cls.getName().replace("org.apache.kafka.", "o.a.k.") + "." + name + (isField ? "" : "()");
                groups.add(new Group(cls, label, def));
            }
        }
        return groups;
    }

    /** {owner, name, descriptor} of each constant-pool field/method ref typed ConfigDef. */
    private static List<String[]> configDefRefs(DataInputStream in) throws IOException {
        in.skipNBytes(8); // magic, minor, major
        int count = in.readUnsignedShort();
        int[] tags = new int[count];
        int[][] refs = new int[count][];
        String[] utf8 = new String[count];
        for (int i = 1; i < count; i++) {
            tags[i] = in.readUnsignedByte();
            switch (tags[i]) {
                case 1 -> utf8[i] = in.readUTF();
                case 7, 8, 16, 19, 20 -> refs[i] = new int[] {in.readUnsignedShort()};
                case 9, 10, 11, 12, 17, 18 -> refs[i] = new int[] {in.readUnsignedShort(), in.readUnsignedShort()};
                case 3, 4 -> in.skipNBytes(4);
                case 5, 6 -> { in.skipNBytes(8); i++; } // 8-byte constants take two slots
                case 15 -> in.skipNBytes(3);
                default -> throw new IOException("unknown constant pool tag " + tags[i]);
            }
        }
        List<String[]> found = new ArrayList<>();
        for (int i = 1; i < count; i++) {
            if (tags[i] != 9 && tags[i] != 10) continue; // Fieldref, Methodref
            String owner = utf8[refs[refs[i][0]][0]];
            int[] nameAndType = refs[refs[i][1]];
            String descriptor = utf8[nameAndType[1]];
            if (descriptor.equals("L" + CONFIG_DEF + ";") || descriptor.equals("()L" + CONFIG_DEF + ";")) {
                found.add(new String[] {owner, utf8[nameAndType[0]], descriptor});
            }
        }
        return found;
    }

    /** The group defining each key; a key two groups define has no known source. */
    private static Map<String, Group> sourceOfEachKey(List<Group> groups) {
        Map<String, Group> sourceOf = new LinkedHashMap<>();
        Set<String> ambiguous = new HashSet<>();
        for (Group group : groups) {
            for (String name : group.def.names()) {
                if (sourceOf.putIfAbsent(name, group) != null) ambiguous.add(name);
            }
        }
        sourceOf.keySet().removeAll(ambiguous);
        return sourceOf;
    }

    private static String kafkaVersion() throws Exception {
        Class<?> parser;
        try { // Kafka 4.2+ moved it
            parser = Class.forName("org.apache.kafka.common.utils.internals.AppInfoParser");
        } catch (ClassNotFoundException e) {
            parser = Class.forName("org.apache.kafka.common.utils.AppInfoParser");
        }
        return (String) parser.getMethod("getVersion").invoke(null);
    }

    /** Key -> "per-broker" | "cluster-wide" for the keys a broker can update dynamically. */
    @SuppressWarnings("unchecked")
    private static Map<String, String> dynamicUpdateModes() throws Exception {
        try { // Kafka 4.2+: Java class
            return (Map<String, String>) Class.forName("org.apache.kafka.server.config.DynamicBrokerConfig")
                    .getMethod("dynamicConfigUpdateModes").invoke(null);
        } catch (ClassNotFoundException e) { // up to 4.1: Scala companion object
            Class<?> companion = Class.forName("kafka.server.DynamicBrokerConfig$");
            return (Map<String, String>) companion.getMethod("dynamicConfigUpdateModes")
                    .invoke(companion.getField("MODULE$").get(null));
        }
    }

    private static String mode(String key, Group group) {
        if (MODE_BY_CODE.containsKey(key)) return MODE_BY_CODE.get(key);
        String name = group == null ? "" : group.owner.getSimpleName();
        if (ZK_GROUPS.contains(name)) return "zk_only";
        if (KRAFT_GROUPS.contains(name)) return "kraft_only";
        return "both";
    }

    private static Object jsonDefault(ConfigKey key) {
        if (!key.hasDefault() || key.type == ConfigDef.Type.PASSWORD) return null;
        return jsonValue(key.defaultValue);
    }

    private static Object jsonValue(Object value) {
        if (value instanceof Class<?> cls) return cls.getName();
        if (value instanceof Collection<?> items) return items.stream().map(GenerateCatalog::jsonValue).toList();
        if (value == null || value instanceof Number || value instanceof Boolean) return value;
        return value.toString();
    }

    private static Map<String, Object> validator(ConfigKey key, Group group) throws ReflectiveOperationException {
        ConfigDef.Validator v = key.validator;
        if (v == null) return null;
        Map<String, Object> rule = new TreeMap<>();
        Matcher betweenOr = BETWEEN_OR_VALUE.matcher(String.valueOf(v));
        if (v instanceof ConfigDef.Range) {
            Number min = (Number) read(v, "min"), max = (Number) read(v, "max");
            rule.put("kind", max == null ? "atLeast" : "between");
            rule.put("min", min);
            if (max != null) rule.put("max", max);
        } else if (v instanceof ConfigDef.ValidString) {
            rule.put("kind", "in");
            rule.put("values", read(v, "validStrings"));
        } else if (v instanceof ConfigDef.CaseInsensitiveValidString) {
            rule.put("kind", "in_case_insensitive");
            rule.put("values", new ArrayList<>(new TreeSet<>((Set<?>) read(v, "validStrings"))));
        } else if (v instanceof ConfigDef.ValidList) {
            List<?> values = (List<?>) read(read(v, "validString"), "validStrings");
            // 4.2+ (KIP-1161): ValidList also refuses duplicates, and says whether an empty
            // or null list passes; anyNonDuplicateValues() has no allowed-value list.
            rule.put("kind", values.isEmpty() ? "list_no_duplicates" : "list_in");
            if (!values.isEmpty()) rule.put("values", values);
            for (String flag : List.of("isEmptyAllowed", "isNullAllowed")) {
                if (hasField(v.getClass(), flag)) {
                    rule.put(flag.equals("isEmptyAllowed") ? "empty_allowed" : "null_allowed", read(v, flag));
                }
            }
        } else if (v instanceof ConfigDef.NonEmptyString) {
            rule.put("kind", "non_empty_string");
        } else if (v instanceof ConfigDef.NonNullValidator) {
            rule.put("kind", "non_null");
        } else if (betweenOr.matches()) {
            rule.put("kind", "between_or_value");
            rule.put("min", Long.parseLong(betweenOr.group(1)));
            rule.put("max", Long.parseLong(betweenOr.group(2)));
            rule.put("or_value", Long.parseLong(betweenOr.group(3)));
        } else {
            rule.put("kind", "custom");
            rule.put("summary", customSummary(key, v, group));
        }
        return rule;
    }

    /**
     * A stable name for a validator catalog.py must give its own rule: "ClassName()" for a
     * named validator class; for a lambda or anonymous one, the static field holding it in
     * the defining class, else the key's name (their class names vary from run to run).
     */
    private static String customSummary(ConfigKey key, ConfigDef.Validator v, Group group)
            throws IllegalAccessException {
        Class<?> cls = v.getClass();
        if (!cls.isAnonymousClass() && !cls.isSynthetic() && !cls.isHidden() && cls != ConfigDef.LambdaValidator.class) {
            return cls.getSimpleName() + "()";
        }
        if (group != null) {
            for (Field field : group.owner.getDeclaredFields()) {
                if (Modifier.isStatic(field.getModifiers()) && ConfigDef.Validator.class.isAssignableFrom(field.getType())) {
                    field.setAccessible(true);
                    if (field.get(null) == v) return field.getName();
                }
            }
        }
        return key.name;
    }

    private static boolean hasField(Class<?> cls, String name) {
        try {
            cls.getDeclaredField(name);
            return true;
        } catch (NoSuchFieldException e) {
            return false;
        }
    }

    /** Validators keep their bounds and allowed values in non-public fields. */
    private static Object read(Object target, String name) throws ReflectiveOperationException {
        Field field = target.getClass().getDeclaredField(name);
        field.setAccessible(true);
        return field.get(target);
    }

    /** JSON in the layout of Python's json.dumps(indent=1, sort_keys=True); the maps here are sorted. */
    private static void writeJson(StringBuilder out, Object value, int depth) {
        if (value instanceof Map<?, ?> map) {
            if (map.isEmpty()) { out.append("{}"); return; }
            out.append('{');
            String sep = "\n";
            for (Map.Entry<?, ?> e : map.entrySet()) {
                out.append(sep).append(" ".repeat(depth + 1));
                writeString(out, e.getKey().toString());
                out.append(": ");
                writeJson(out, e.getValue(), depth + 1);
                sep = ",\n";
            }
            out.append('\n').append(" ".repeat(depth)).append('}');
        } else if (value instanceof List<?> list) {
            if (list.isEmpty()) { out.append("[]"); return; }
            out.append('[');
            String sep = "\n";
            for (Object item : list) {
                out.append(sep).append(" ".repeat(depth + 1));
                writeJson(out, item, depth + 1);
                sep = ",\n";
            }
            out.append('\n').append(" ".repeat(depth)).append(']');
        } else if (value instanceof String s) {
            writeString(out, s);
        } else {
            out.append(value); // null, Boolean, Number
        }
    }

    private static void writeString(StringBuilder out, String s) {
        out.append('"');
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20 || c > 0x7e) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        out.append('"');
    }
}
