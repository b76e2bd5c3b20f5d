import RepriseCore

/// Summaries of each metric history, kept as it is written, so a chart of a long history reads a
/// few thousand rows instead of every point.
///
/// A history (one run, one key) is cut into tiles of `tileSize` points in the order they were
/// stored. A tile keeps its point count, and over its finite points the count, the step and
/// timestamp ranges and sums, the value range, and the sum of the values within ±1e300 (the
/// mean leaves out values whose sum could overflow, as the bucket query does). The earliest
/// timestamp of any point (the relative axis' zero) is kept too.
///
/// The rule the reader relies on: a history has tiles only if they summarise every point of it.
/// - A new history (no stored point yet) starts at tile 0 and each write adds exactly the points
///   it stored.
/// - A write that cannot tell which of its points were new (a multi-row insert that skipped a
///   duplicate) deletes the history's tiles, and a history with points but no tiles is never
///   given any by a write: readers then scan the points, as they did before tiles existed.
/// - Migration 15, `reprise import mlflow` and a restore build tiles from the stored points
///   (`rebuildSQL`), which is exact whatever the history.
///
/// Tiles follow storage order, not x order: the reader uses them only when, along the axis it
/// draws, each tile starts at or after the previous one ends (the usual history, logged in step and
/// time order), and scans the points otherwise.
enum MetricTiles {
    /// Points per tile: a 1,000,000-point history is about 3,900 rows, and a log-metric write
    /// updates one.
    static let tileSize: Int64 = 256

    static let columns =
        "run_uuid, key, tile, points, finite, min_step, max_step, min_ts, max_ts, first_ts, min_value, max_value, sum_value, summed, sum_step, sum_ts"

    static func createSQL(_ clustered: String) -> String {
        """
        CREATE TABLE metric_tiles (
          run_uuid TEXT NOT NULL, key TEXT NOT NULL, tile BIGINT NOT NULL, points BIGINT NOT NULL, finite BIGINT NOT NULL,
          min_step BIGINT, max_step BIGINT, min_ts BIGINT, max_ts BIGINT, first_ts BIGINT NOT NULL,
          min_value DOUBLE PRECISION, max_value DOUBLE PRECISION, sum_value DOUBLE PRECISION NOT NULL, summed BIGINT NOT NULL,
          sum_step DOUBLE PRECISION NOT NULL, sum_ts DOUBLE PRECISION NOT NULL,
          PRIMARY KEY (run_uuid, key, tile))\(clustered)
        """
    }

    /// A finite stored value: NaN carries `is_nan`, ±inf is stored as ±Double.greatestFiniteMagnitude
    /// (as MLflow stores it), so the bounds are exclusive. The one SQL spelling of the rule, for the
    /// tiles and for the chart queries alike (`Summary.add` is its Swift twin).
    static let finiteSQL =
        "is_nan = 0 AND value > CAST('-1.7976931348623157e308' AS DOUBLE PRECISION) AND value < CAST('1.7976931348623157e308' AS DOUBLE PRECISION)"

    /// Values a mean adds up: beyond ±1e300 a sum could overflow (an error on PostgreSQL), so those
    /// stay in the minimum and maximum only.
    static let summableSQL = "value > -1e300 AND value < 1e300"

    /// Tiles for the histories of the runs `scope` selects (a condition on `run_uuid`, or `1 = 1`),
    /// from their stored points in timestamp order; the caller deletes theirs first.
    static func rebuildSQL(scope: String) -> String {
        let f = "f = 1"
        return """
            INSERT INTO metric_tiles (\(columns))
            SELECT run_uuid, key, (n - 1) / \(tileSize), COUNT(*), SUM(f),
              MIN(CASE WHEN \(f) THEN step END), MAX(CASE WHEN \(f) THEN step END),
              MIN(CASE WHEN \(f) THEN timestamp END), MAX(CASE WHEN \(f) THEN timestamp END), MIN(timestamp),
              MIN(CASE WHEN \(f) THEN value END), MAX(CASE WHEN \(f) THEN value END),
              COALESCE(SUM(CASE WHEN \(f) AND \(summableSQL) THEN value END), 0),
              SUM(CASE WHEN \(f) AND \(summableSQL) THEN 1 ELSE 0 END),
              COALESCE(SUM(CASE WHEN \(f) THEN CAST(step AS DOUBLE PRECISION) END), 0),
              COALESCE(SUM(CASE WHEN \(f) THEN CAST(timestamp AS DOUBLE PRECISION) END), 0)
            FROM (
              SELECT run_uuid, key, step, timestamp, value,
                ROW_NUMBER() OVER (PARTITION BY run_uuid, key ORDER BY timestamp, step, value, is_nan) AS n,
                CASE WHEN \(finiteSQL) THEN 1 ELSE 0 END AS f
              FROM metrics WHERE \(scope)) AS numbered
            GROUP BY run_uuid, key, (n - 1) / \(tileSize)
            """
    }

    /// What a tile adds up; merged into a stored tile by `upsertSQL`.
    struct Summary {
        var points: Int64 = 0
        var finite: Int64 = 0
        var minStep: Int64? = nil
        var maxStep: Int64? = nil
        var minTS: Int64? = nil
        var maxTS: Int64? = nil
        var firstTS: Int64 = .max
        var minValue: Double? = nil
        var maxValue: Double? = nil
        var sumValue: Double = 0
        var summed: Int64 = 0
        var sumStep: Double = 0
        var sumTS: Double = 0

        mutating func add(_ m: Metric) {
            let (value, isNaN) = SQLTrackingStore.storedValue(m.value)
            points += 1
            firstTS = Swift.min(firstTS, m.timestamp)
            guard isNaN == 0, value > -.greatestFiniteMagnitude, value < .greatestFiniteMagnitude else { return }
            finite += 1
            minStep = Swift.min(minStep ?? m.step, m.step)
            maxStep = Swift.max(maxStep ?? m.step, m.step)
            minTS = Swift.min(minTS ?? m.timestamp, m.timestamp)
            maxTS = Swift.max(maxTS ?? m.timestamp, m.timestamp)
            minValue = Swift.min(minValue ?? value, value)
            maxValue = Swift.max(maxValue ?? value, value)
            if value > -1e300 && value < 1e300 {
                sumValue += value
                summed += 1
            }
            sumStep += Double(m.step)
            sumTS += Double(m.timestamp)
        }

        func binds(_ runID: String, _ key: String, _ tile: Int64) -> [SQLValue] {
            [
                .text(runID), .text(key), .int(tile), .int(points), .int(finite), SQLValue(minStep), SQLValue(maxStep), SQLValue(minTS),
                SQLValue(maxTS), .int(firstTS), SQLValue(minValue), SQLValue(maxValue), .double(sumValue), .int(summed),
                .double(sumStep), .double(sumTS),
            ]
        }
    }

    static let width = 16
    static let chunk = 50

    /// What a stored tile becomes with more points (excluded: the new summary).
    static let mergeSQL: String = {
        func least(_ c: String) -> String {
            "\(c) = CASE WHEN excluded.\(c) IS NULL OR (metric_tiles.\(c) IS NOT NULL AND metric_tiles.\(c) <= excluded.\(c)) THEN metric_tiles.\(c) ELSE excluded.\(c) END"
        }
        func greatest(_ c: String) -> String {
            "\(c) = CASE WHEN excluded.\(c) IS NULL OR (metric_tiles.\(c) IS NOT NULL AND metric_tiles.\(c) >= excluded.\(c)) THEN metric_tiles.\(c) ELSE excluded.\(c) END"
        }
        func sum(_ c: String) -> String { "\(c) = metric_tiles.\(c) + excluded.\(c)" }
        let set = [
            sum("points"), sum("finite"), least("min_step"), greatest("max_step"), least("min_ts"), greatest("max_ts"), least("first_ts"),
            least("min_value"), greatest("max_value"), sum("sum_value"), sum("summed"), sum("sum_step"), sum("sum_ts"),
        ]
        return "ON CONFLICT (run_uuid, key, tile) DO UPDATE SET " + set.joined(separator: ", ")
    }()

    /// One point a single-point write stored, in one statement (the hot path of `log-metric`): the
    /// tile is the newest one, or the next when it is full, or 0 for a new history; nothing
    /// happens for a history with points and no tiles. Run after the point's insert and before
    /// the latest value's upsert (which would make a new history look old). Binds: run, key, run,
    /// key, the summary's 13 values, run, key, run, key.
    static let singleSQL = """
        INSERT INTO metric_tiles (\(columns))
        SELECT ?, ?, COALESCE((SELECT CASE WHEN t.points >= \(tileSize) THEN t.tile + 1 ELSE t.tile END FROM metric_tiles t
            WHERE t.run_uuid = ? AND t.key = ? ORDER BY t.tile DESC LIMIT 1), 0),
          ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
        WHERE EXISTS (SELECT 1 FROM metric_tiles e WHERE e.run_uuid = ? AND e.key = ?)
          OR NOT EXISTS (SELECT 1 FROM latest_metrics l WHERE l.run_uuid = ? AND l.key = ?)
        \(mergeSQL)
        """

    static func recordSingle(_ db: any SQLConnection, runID: String, _ m: Metric) async throws {
        var one = Summary()
        one.add(m)
        let (run, key) = (SQLValue.text(runID), SQLValue.text(m.key))
        try await db.execute(singleSQL, [run, key, run, key] + one.binds(runID, m.key, 0).dropFirst(3) + [run, key, run, key])
    }

    static let upsertSQL: [String] = (0...chunk).map { n in
        if n == 0 { return "" }
        return "INSERT INTO metric_tiles (\(columns)) VALUES \(valueRows(n, width: width)) \(mergeSQL)"
    }

    /// Where each key's next point goes, read before a write stores any: the newest tile and its
    /// point count; (0, 0) for a history with no point yet; nil for one with points and no tiles
    /// (never summarised, or no longer: see the type's rule).
    ///
    /// One statement per 50 keys, each key's newest tile found by one index probe (a correlated
    /// `MAX` would be evaluated for every tile of the key); the texts repeat, so the driver keeps
    /// them prepared. Only keys without tiles are looked up among the latest values.
    static func openTiles(_ db: any SQLConnection, runID: String, keys: some Sequence<String>) async throws -> [String: (tile: Int64, points: Int64)?] {
        let distinct = Array(Set(keys)).sorted()
        var open: [String: (tile: Int64, points: Int64)?] = [:]
        for start in stride(from: 0, to: distinct.count, by: newestChunk) {
            let part = distinct[start..<min(start + newestChunk, distinct.count)]
            for r in try await db.query(newestSQL[part.count], part.flatMap { [.text(runID), .text($0)] }) {
                open[r.string(0)] = (r.int(1), r.int(2))
            }
        }
        let untiled = distinct.filter { open[$0] == nil }
        var hasPoints: Set<String> = []
        for start in stride(from: 0, to: untiled.count, by: 200) {
            let part = untiled[start..<min(start + 200, untiled.count)].map(SQLValue.text)
            for r in try await db.query(
                "SELECT key FROM latest_metrics WHERE run_uuid = ? AND key IN (\(placeholders(part.count)))", [.text(runID)] + part)
            {
                hasPoints.insert(r.string(0))
            }
        }
        for key in untiled { open[key] = hasPoints.contains(key) ? .some(nil) : (0, 0) }
        return open
    }

    static let newestChunk = 50
    static let newestSQL: [String] = (0...newestChunk).map { n in
        (0..<n).map { i in
            "SELECT key, tile, points FROM (SELECT key, tile, points FROM metric_tiles WHERE run_uuid = ? AND key = ? ORDER BY tile DESC LIMIT 1) AS k\(i)"
        }.joined(separator: " UNION ALL ")
    }

    /// Adds the points a write stored (in the order stored) to their histories' tiles, and drops the
    /// tiles of the histories in `unsure` (the write stored some of their points, and cannot say which).
    ///
    /// On the log-batch path: one dictionary lookup per point (the key's slot), the rest array
    /// and struct arithmetic, then one multi-row upsert per 50 tiles touched.
    static func record(
        _ db: any SQLConnection, runID: String, stored: [Metric]..., unsure: Set<String>, open: [String: (tile: Int64, points: Int64)?]
    ) async throws {
        for key in unsure.sorted() {
            try await db.execute("DELETE FROM metric_tiles WHERE run_uuid = ? AND key = ?", [.text(runID), .text(key)])
        }
        struct Slot {
            var key: String
            var tile: Int64
            var points: Int64
            var current = Summary()
        }
        var slotOf: [String: Int] = [:]
        var slots: [Slot] = []
        var done: [[SQLValue]] = []
        for part in stored {
            for m in part {
                let i: Int
                if let known = slotOf[m.key] {
                    i = known
                } else {
                    // A key in `unsure`, or with points but no tiles, is not summarised: slot -1.
                    guard !unsure.contains(m.key), let start = open[m.key] ?? nil else {
                        slotOf[m.key] = -1
                        continue
                    }
                    i = slots.count
                    slotOf[m.key] = i
                    slots.append(Slot(key: m.key, tile: start.tile, points: start.points))
                }
                if i < 0 { continue }
                if slots[i].points >= tileSize {
                    if slots[i].current.points > 0 { done.append(slots[i].current.binds(runID, slots[i].key, slots[i].tile)) }
                    slots[i].tile += 1
                    slots[i].points = 0
                    slots[i].current = Summary()
                }
                slots[i].current.add(m)
                slots[i].points += 1
            }
        }
        for s in slots where s.current.points > 0 { done.append(s.current.binds(runID, s.key, s.tile)) }
        try await db.executeRows(done, chunk: chunk) { upsertSQL[$0] }
    }

    /// One tile as the reader uses it, on one axis.
    struct Tile {
        var finite: Int64
        var minX: Int64
        var maxX: Int64
        var minTS: Int64
        var maxTS: Int64
        var minValue: Double
        var maxValue: Double
        var sumValue: Double
        var summed: Int64
        var sumX: Double

        /// Folds the next tile (starting where this one ends) into this one.
        mutating func absorb(_ t: Tile) {
            finite += t.finite
            maxX = t.maxX
            minTS = Swift.min(minTS, t.minTS)
            maxTS = Swift.max(maxTS, t.maxTS)
            minValue = Swift.min(minValue, t.minValue)
            maxValue = Swift.max(maxValue, t.maxValue)
            sumValue += t.sumValue
            summed += t.summed
            sumX += t.sumX
        }

        var point: MetricSeries.Point {
            let mean = summed > 0 ? sumValue / Double(summed) : minValue / 2 + maxValue / 2
            return MetricSeries.Point(x: sumX / Double(finite), y: mean, min: minValue, max: maxValue, mean: mean, count: Int(clamping: finite))
        }
    }

    /// A history's tiles along `axis`, as runs of x that do not overlap: what the reader needs.
    struct Layout {
        /// Points of every kind, finite points, and the earliest timestamp.
        var points: Int64
        var finite: Int64
        var origin: Int64
        /// Finite tiles in x order, ties merged (a run of tiles sharing a boundary x is one), so
        /// the points with x in a group's range are exactly the group's points.
        var groups: [Tile]
    }

    /// The layout, or nil when the history has no tiles or its tiles overlap along the axis.
    static func layout(_ db: any SQLConnection, runID: String, key: String, axis: MetricAxis) async throws -> Layout? {
        let rows = try await db.query(
            """
            SELECT points, finite, min_step, max_step, min_ts, max_ts, first_ts, min_value, max_value, sum_value, summed, sum_step, sum_ts
            FROM metric_tiles WHERE run_uuid = ? AND key = ? ORDER BY tile
            """, [.text(runID), .text(key)])
        if rows.isEmpty { return nil }
        var out = Layout(points: 0, finite: 0, origin: .max, groups: [])
        out.groups.reserveCapacity(rows.count)
        let byStep = axis == .step
        for r in rows {
            out.points += r.int(0)
            out.origin = min(out.origin, r.int(6))
            let finite = r.int(1)
            guard finite > 0, let minStep = r.optionalInt(2), let maxStep = r.optionalInt(3), let minTS = r.optionalInt(4),
                let maxTS = r.optionalInt(5), let minV = r.optionalDouble(7), let maxV = r.optionalDouble(8)
            else { continue }
            out.finite += finite
            let t = Tile(
                finite: finite, minX: byStep ? minStep : minTS, maxX: byStep ? maxStep : maxTS, minTS: minTS, maxTS: maxTS,
                minValue: minV, maxValue: maxV, sumValue: r.double(9), summed: r.int(10), sumX: byStep ? r.double(11) : r.double(12))
            if let last = out.groups.last {
                if t.minX < last.maxX { return nil }  // overlaps the previous tile: x order is not storage order
                if t.minX == last.maxX {
                    out.groups[out.groups.count - 1].absorb(t)
                    continue
                }
            }
            out.groups.append(t)
        }
        return out
    }
}

extension SQLTrackingStore {
    /// Builds every history's tiles anew from its stored points (after a restore, which writes
    /// points as rows and tiles not at all). One transaction.
    public func rebuildMetricTiles() async throws {
        try await write { db, _ in
            try await db.execute("DELETE FROM metric_tiles", [])
            try await db.execute(MetricTiles.rebuildSQL(scope: "1 = 1"), [])
        }
    }
}
