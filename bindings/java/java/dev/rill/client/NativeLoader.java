package dev.rill.client;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads the Rust library ({@code librill_java}): from the path in the system property
 * {@code rill.native.library} if set, else from the jar ({@code /native/<os>-<arch>/}),
 * copied to a temporary file for {@code System.load}. On Linux and macOS the file is deleted
 * as soon as it is loaded (the mapping stays), so nothing is left behind.
 */
final class NativeLoader {
    private NativeLoader() {}

    static String platform() {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String o = os.contains("linux") ? "linux"
                : os.contains("mac") || os.contains("darwin") ? "macos"
                : os.contains("windows") ? "windows" : os.replace(' ', '_');
        String a = arch.equals("amd64") || arch.equals("x86_64") ? "x86_64"
                : arch.equals("aarch64") || arch.equals("arm64") ? "aarch64" : arch;
        return o + "-" + a;
    }

    static void load() {
        String explicit = System.getProperty("rill.native.library");
        if (explicit != null && !explicit.isEmpty()) {
            System.load(new File(explicit).getAbsolutePath());
            return;
        }
        String name = System.mapLibraryName("rill_java");
        String resource = "/native/" + platform() + "/" + name;
        try (InputStream in = NativeLoader.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new UnsatisfiedLinkError("the Rill jar has no native library for "
                        + platform() + " (" + resource + "); build the jar on this platform "
                        + "(bindings/java/build.sh) or set -Drill.native.library=<path>");
            }
            int dot = name.lastIndexOf('.');
            Path tmp = Files.createTempFile("rill_java-", dot >= 0 ? name.substring(dot) : "");
            try {
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                System.load(tmp.toAbsolutePath().toString());
            } finally {
                if (platform().startsWith("windows")) {
                    tmp.toFile().deleteOnExit(); // a loaded DLL cannot be deleted
                } else {
                    Files.deleteIfExists(tmp);
                }
            }
        } catch (IOException e) {
            UnsatisfiedLinkError err =
                    new UnsatisfiedLinkError("could not unpack the Rill native library: " + e);
            err.initCause(e);
            throw err;
        }
    }
}
