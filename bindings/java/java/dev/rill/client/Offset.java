package dev.rill.client;

/** Where a consumer starts. */
public final class Offset {
    private final int kind;
    private final long value;

    private Offset(int kind, long value) {
        this.kind = kind;
        this.value = value;
    }

    /** The first record still stored. */
    public static Offset beginning() {
        return new Offset(0, 0);
    }

    /** Only records produced from now on. */
    public static Offset end() {
        return new Offset(1, 0);
    }

    /** This exact offset (not negative). */
    public static Offset absolute(long offset) {
        if (offset < 0) {
            throw new IllegalArgumentException("offset " + offset + " is negative");
        }
        return new Offset(2, offset);
    }

    /** {@code n} records before the end. */
    public static Offset fromEnd(long n) {
        return new Offset(3, Math.max(0, n));
    }

    int kind() {
        return kind;
    }

    long value() {
        return value;
    }

    @Override
    public String toString() {
        switch (kind) {
            case 0:
                return "Offset.beginning()";
            case 1:
                return "Offset.end()";
            case 2:
                return "Offset.absolute(" + value + ")";
            default:
                return "Offset.fromEnd(" + value + ")";
        }
    }
}
