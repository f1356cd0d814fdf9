package dev.rill.client;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * One real SPU: the debug {@code rill} binary ({@code -Drill.test.bin}, else RILL_BIN, else
 * $CARGO_TARGET_DIR/debug/rill) on 127.0.0.1 port 0 with its own data directory, stopped by
 * its PID (SIGTERM through {@link Process#destroy()}, then SIGKILL if it lingers). {@link
 * #restart()} brings it back on the same port and data.
 */
final class Spu implements AutoCloseable {
    private static final String PREFIX = "rill SPU listening on ";

    final Path workdir;
    private String addr;
    private Process proc;
    private int starts;

    Spu() {
        try {
            workdir = Files.createTempDirectory("rill-java-spu-");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
        start("127.0.0.1:0");
    }

    static Path binary() {
        String bin = System.getProperty("rill.test.bin");
        if (bin == null || bin.isEmpty()) {
            bin = System.getenv("RILL_BIN");
        }
        if (bin == null || bin.isEmpty()) {
            String target = System.getenv("CARGO_TARGET_DIR");
            bin = (target == null ? "../../target" : target) + "/debug/rill";
        }
        return Paths.get(bin);
    }

    String addr() {
        return addr;
    }

    long pid() {
        return proc.pid();
    }

    void start(String listen) {
        Path bin = binary();
        if (!Files.isExecutable(bin)) {
            throw new IllegalStateException(bin + " is missing: run `cargo build -p rill-cli`");
        }
        starts++;
        ProcessBuilder pb = new ProcessBuilder(bin.toString(), "cluster", "start", "--foreground",
                "--listen", listen, "--data-dir", workdir.resolve("data").toString());
        pb.environment().put("RILL_HOME", workdir.resolve("home").toString());
        pb.redirectError(workdir.resolve("spu-" + starts + ".log").toFile());
        try {
            proc = pb.start();
            BufferedReader out = new BufferedReader(
                    new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8));
            String line = out.readLine();
            if (line == null || !line.startsWith(PREFIX)) {
                stop();
                throw new IllegalStateException(
                        "the SPU did not start: " + line + ", see " + workdir);
            }
            addr = line.substring(PREFIX.length()).trim();
            Thread drain = new Thread(() -> {
                try {
                    while (out.readLine() != null) {
                        // keep the pipe from filling
                    }
                } catch (IOException ignored) {
                    // the SPU stopped
                }
            }, "spu-stdout");
            drain.setDaemon(true);
            drain.start();
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    /** SIGTERM by PID, then SIGKILL by PID if it has not ended within 15 s. */
    void stop() {
        Process p = proc;
        proc = null;
        if (p == null || !p.isAlive()) {
            return;
        }
        p.destroy();
        try {
            if (!p.waitFor(15, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(15, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    void restart() {
        start(addr);
    }

    @Override
    public void close() {
        stop();
        try (Stream<Path> files = Files.walk(workdir)) {
            List<Path> all = new ArrayList<>();
            files.sorted(Comparator.reverseOrder()).forEach(all::add);
            for (Path f : all) {
                Files.deleteIfExists(f);
            }
        } catch (IOException ignored) {
            // a temporary directory left behind is harmless
        }
    }

    /** A fresh topic name. */
    static String topicName() {
        return "t-" + UUID.randomUUID().toString().substring(0, 10);
    }

    /** A fresh topic with {@code partitions} partitions. */
    static String newTopic(Rill rill, int partitions) {
        String name = topicName();
        rill.admin().createTopic(name, partitions);
        return name;
    }

    /** {@code count} records of all partitions of {@code topic} (fewer if they stop coming). */
    static List<Record> readAll(Rill rill, String topic, int count) {
        List<Record> records = new ArrayList<>();
        try (RecordStream stream = rill.consumer(topic)) {
            while (records.size() < count) {
                java.util.Optional<Record> r = stream.tryNext();
                if (!r.isPresent()) {
                    break;
                }
                records.add(r.get());
            }
        }
        return records;
    }
}
