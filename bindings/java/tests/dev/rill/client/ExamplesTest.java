package dev.rill.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The two documented producer examples (bindings/java/examples) run as programs of their own,
 * from the jar, and print where their record landed; the record is there.
 */
class ExamplesTest {
    static Spu spu;
    static Rill rill;

    @BeforeAll
    static void start() {
        spu = new Spu();
        rill = Rill.connect(spu.addr());
        rill.admin().createTopic("greetings", 1);
    }

    @AfterAll
    static void stop() {
        rill.close();
        spu.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"dev.rill.examples.AtMostOnce", "dev.rill.examples.AtLeastOnce"})
    void theDocumentedExampleRuns(String main) throws IOException, InterruptedException {
        String classpath = System.getProperty("rill.test.classpath");
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-cp", classpath, main);
        pb.environment().put("RILL_ADDR", spu.addr());
        pb.redirectErrorStream(true);
        Process proc = pb.start();
        String out = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(proc.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, proc.exitValue(), out);
        Matcher m = Pattern.compile("partition (\\d+), offset (\\d+)").matcher(out);
        assertTrue(m.find(), out);
        assertEquals(0, Integer.parseInt(m.group(1)));
        long offset = Long.parseLong(m.group(2));
        try (PartitionConsumer c = rill.partitionConsumer("greetings", 0);
                RecordStream s = c.stream(Offset.absolute(offset))) {
            Record r = s.tryNext().orElseThrow();
            assertEquals(offset, r.offset());
            assertEquals("Hello", r.keyString());
            assertEquals("Rill!", r.valueString());
        }
    }
}
