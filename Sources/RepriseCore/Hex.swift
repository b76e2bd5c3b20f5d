/// Lower-case hexadecimal text of bytes: digests, MACs, tokens. One encoder for the whole project.
public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)

    public static func encode<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of hexadecimal text (either case); nil for an odd length or a non-hex character.
    public static func decode(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        let nibble = Validation.hexValue
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let hi = nibble(u[i]), let lo = nibble(u[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}

/// Equality of secrets (MACs, token hashes) that takes the same time wherever the first difference
/// is, so timing does not reveal how much of a guess was right. One comparison for the project.
public enum ConstantTime {
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// Random identifiers (runs, traces, requests, webhooks, temporary files): 122 random bits from the
/// system generator laid out as a version-4 UUID. One source of ids for the project.
///
/// Written by hand rather than `UUID()`: on Linux, Foundation's `UUID()` opens and reads
/// `/dev/urandom` on every call, and with the string clean-up around it that was ~4 % of a run
/// creation's CPU under load (perf, 2026-12-03); `SystemRandomNumberGenerator` is one `getrandom(2)`.
public enum RandomID {
    /// 32 lower-case hexadecimal digits: the form MLflow gives run, experiment-less and trace ids
    /// (`uuid.uuid4().hex`).
    public static func hex() -> String { format(dashes: false) }

    /// The canonical lower-case dashed form, `8-4-4-4-12`.
    public static func uuid() -> String { format(dashes: true) }

    private static func format(dashes: Bool) -> String {
        var rng = SystemRandomNumberGenerator()
        // Version 4 (random) and the RFC 4122 variant, as uuid4 sets them.
        let hi = (rng.next() as UInt64) & ~0xF000 | 0x4000
        let lo = (rng.next() as UInt64) & ~(0xC000_0000_0000_0000 as UInt64) | 0x8000_0000_0000_0000
        let count = dashes ? 36 : 32
        return String(unsafeUninitializedCapacity: count) { out in
            var o = 0
            for digit in 0..<32 {
                if dashes, digit == 8 || digit == 12 || digit == 16 || digit == 20 {
                    out[o] = UInt8(ascii: "-")
                    o += 1
                }
                let word = digit < 16 ? hi : lo
                out[o] = Hex.digits[Int((word >> UInt64(60 - 4 * (digit & 15))) & 0xF)]
                o += 1
            }
            return o
        }
    }
}
