package vdsmc;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The tests' door into Engine's own classes: one JVM per test session,
 * JSON-lines requests on stdin, one JSON-lines answer each on stdout.
 *
 * A request is {"cmd": ..., ...}; the answer {"ok": true, "result": ...,
 * "log": [...]} or {"ok": false, "error": "...", "trace": "...", "log":
 * [...]}.  "log" holds what Engine's code logged (slf4j-simple writes to
 * System.err, which is captured per request): an ERROR there is Engine
 * complaining about what it was fed.
 *
 * Requests are decoded as vdsm-jsonrpc-java's ResponseDecomposer and
 * EventDecomposer decode vdsm's answers (Jackson with
 * USE_JAVA_ARRAY_FOR_JSON_ARRAY: integers Integer or Long, floats Double,
 * arrays Object[]), so Engine's builders see the types they see in Engine.
 */
public final class Harness {

    private static final ObjectMapper IN = new ObjectMapper()
            .configure(DeserializationFeature.USE_JAVA_ARRAY_FOR_JSON_ARRAY, true);
    private static final ObjectMapper OUT = new ObjectMapper();

    private Harness() {
    }

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        PrintStream err = System.err;
        System.setOut(err);         // nothing but answers on the answer stream
        EngineConfig config = new EngineConfig();
        Monitor monitor = new Monitor();
        XmlBuild xml = new XmlBuild();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            if (line.isBlank()) {
                continue;
            }
            ByteArrayOutputStream captured = new ByteArrayOutputStream();
            System.setErr(new PrintStream(captured, true, StandardCharsets.UTF_8));
            Map<String, Object> answer = new LinkedHashMap<>();
            try {
                @SuppressWarnings("unchecked")
                Map<String, Object> req = IN.readValue(line, Map.class);
                answer.put("result", "config".equals(req.get("cmd"))
                        ? config(config, req) : dispatch(monitor, xml, req));
                answer.put("ok", true);
            } catch (Throwable t) {
                StringWriter trace = new StringWriter();
                t.printStackTrace(new PrintWriter(trace));
                answer.put("ok", false);
                answer.put("error", String.valueOf(t));
                answer.put("trace", trace.toString());
            } finally {
                System.setErr(err);
            }
            answer.put("log", lines(captured.toString(StandardCharsets.UTF_8)));
            out.println(OUT.writeValueAsString(answer));
        }
    }

    private static Object dispatch(Monitor monitor, XmlBuild xml, Map<String, Object> req) throws Exception {
        String cmd = (String) req.get("cmd");
        switch (cmd) {
        case "ping":
            return "pong";
        case "new-engine":
            monitor.newEngine((String) req.get("host"));
            return null;
        case "created":
            monitor.created((String) req.get("vmId"), req.get("macs"));
            return null;
        case "destroyed":
            monitor.destroyed((String) req.get("vmId"));
            return null;
        case "poll":
            return monitor.poll((Object[]) req.get("stats"));
        case "event":
            return monitor.event(Monitor.map(req.get("params")));
        case "caps":
            return monitor.caps(Monitor.map(req.get("caps")));
        case "build-xml":
            return xml.build(Monitor.map(req.get("vm")));
        default:
            throw new IllegalArgumentException("no such command: " + cmd);
        }
    }

    /** engine-config -s: {"cmd": "config", "name": ..., "value": ...}. */
    private static Object config(EngineConfig config, Map<String, Object> req) {
        config.set((String) req.get("name"), (String) req.get("value"), (String) req.get("version"));
        return null;
    }

    private static List<String> lines(String text) {
        List<String> out = new ArrayList<>();
        for (String l : text.split("\n")) {
            if (!l.isBlank()) {
                out.add(l);
            }
        }
        return out;
    }
}
