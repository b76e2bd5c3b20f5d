import RepriseCore

extension SQLTrackingStore {
    /// A run with more recorded artifacts than this is refused rather than read into memory.
    static let maxDigestsPerRoot = 1_000_000

    /// `location > root + "/"` and below `root + "0"` (`0` follows `/` in byte order): everything
    /// under `root`, as one index range. Text compares byte by byte on both databases (SQLite's
    /// BINARY collation, `COLLATE "C"` on PostgreSQL's text columns), and no character in a
    /// location acts as a wildcard, as it would with LIKE.
    static func range(under root: String) -> [SQLValue] {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        return [.text(base + "/"), .text(base + "0")]
    }

    public func recordArtifactDigest(_ d: ArtifactDigest) async throws {
        try await write { db, _ in
            _ = try await db.execute(
                """
                INSERT INTO artifact_digests (location, size, sha256, recorded_time, method) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (location) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256,
                  recorded_time = excluded.recorded_time, method = excluded.method
                """,
                [.text(d.location), .int(d.size), d.sha256.map { .text($0) } ?? .null, .int(d.recordedTime), .text(d.method)])
        }
    }

    public func completeArtifactDigest(location: String, recordedTime: Int64, size: Int64, sha256: String, method: String) async throws -> Bool {
        try await write { db, _ in
            try await db.execute(
                "UPDATE artifact_digests SET sha256 = ?, method = ? WHERE location = ? AND recorded_time = ? AND size = ? AND sha256 IS NULL",
                [.text(sha256), .text(method), .text(location), .int(recordedTime), .int(size)]) == 1
        }
    }

    public func artifactDigests(under root: String) async throws -> [ArtifactDigest] {
        let rows = try await read { db in
            try await db.query(
                "SELECT location, size, sha256, recorded_time, method FROM artifact_digests WHERE location >= ? AND location < ? ORDER BY location LIMIT \(Self.maxDigestsPerRoot + 1)",
                Self.range(under: root))
        }
        guard rows.count <= Self.maxDigestsPerRoot else {
            throw RepriseError(.resourceExhausted, "More than \(Self.maxDigestsPerRoot) artifacts are recorded under \(root).")
        }
        return rows.map { r in
            ArtifactDigest(location: r.string(0), size: r.int(1), sha256: r.optionalString(2), recordedTime: r.int(3), method: r.string(4))
        }
    }

    public func forgetArtifactDigests(at location: String) async throws {
        let base = location.hasSuffix("/") ? String(location.dropLast()) : location
        try await write { db, _ in
            _ = try await db.execute(
                "DELETE FROM artifact_digests WHERE location = ? OR (location >= ? AND location < ?)", [.text(base)] + Self.range(under: base))
        }
    }
}
