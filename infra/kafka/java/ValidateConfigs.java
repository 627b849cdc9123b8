// Runs Kafka's own start-up config validation on server.properties files, in one JVM:
//   java -cp 'LIBS/*' infra/kafka/java/ValidateConfigs.java FILE...   (or paths on stdin, one a line)
// Prints one JSON line per file, in input order:
//   {"file": "...", "ok": true}  or  {"file": "...", "ok": false, "error": "ExceptionClass: message"}

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import kafka.server.KafkaConfig;
import org.apache.kafka.common.utils.Utils;

public class ValidateConfigs {
    public static void main(String[] args) throws Exception {
        silenceLogging();
        List<String> files = new ArrayList<>(Arrays.asList(args));
        if (files.isEmpty()) {
            BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            for (String line; (line = stdin.readLine()) != null; ) {
                if (!line.isBlank()) files.add(line.strip());
            }
        }
        StringBuilder out = new StringBuilder();
        for (String file : files) {
            out.setLength(0);
            out.append("{\"file\": ").append(json(file));
            try {
                // What kafka.Kafka does at start: Utils.loadProps, then KafkaConfig.fromProps
                // with doLog=false (doLog only prints the values; validation is the same).
                KafkaConfig.fromProps(Utils.loadProps(file), false);
                out.append(", \"ok\": true}");
            } catch (Exception e) {
                String error = e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage());
                out.append(", \"ok\": false, \"error\": ").append(json(error)).append('}');
            }
            System.out.println(out);
        }
    }

    /**
     * Stdout carries the results, so Kafka must log nothing (log4j2's built-in configuration
     * would print ERRORs there). Kafka 4.x logs through log4j2, whose built-in configuration
     * (no log4j2 file on the classpath) takes its root level from a system property. Kafka 3.9
     * logs through reload4j: skip its search for a log4j.properties and turn its root logger
     * off (by reflection: only 3.9's classpath has it).
     */
    private static void silenceLogging() throws ReflectiveOperationException {
        System.setProperty("org.apache.logging.log4j.level", "OFF");
        System.setProperty("log4j.defaultInitOverride", "true");
        try {
            Class<?> level = Class.forName("org.apache.log4j.Level");
            Object root = Class.forName("org.apache.log4j.Logger").getMethod("getRootLogger").invoke(null);
            Method setLevel = root.getClass().getMethod("setLevel", level);
            setLevel.invoke(root, level.getField("OFF").get(null));
        } catch (ClassNotFoundException e) {
            // not reload4j: log4j2, silenced above
        }
    }

    private static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> { // ASCII only: stdout's charset need not be UTF-8
                    if (c < 0x20 || c > 0x7e) out.append(String.format("\\u%04x", (int) c));
                    else out.append(c);
                }
            }
        }
        return out.append('"').toString();
    }
}
