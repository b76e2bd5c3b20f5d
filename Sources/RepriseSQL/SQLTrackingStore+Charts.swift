import RepriseCore

extension SQLTrackingStore {
    /// The history reduced to at most `maxPoints` points: the logged points when the range holds
    /// few enough, one per bucket of equal x width otherwise.
    ///
    /// A history with tiles (`MetricTiles`) that lie in x order is read from them: a few thousand
    /// rows whatever its length, plus the points of at most two partly covered runs of tiles at
    /// the range's ends. When the range holds too few tiles to draw it (zoomed in), the points in
    /// range are read, with the tiles' timestamps narrowing the scan to an index range. A history
    /// without usable tiles is reduced by the database: one scan for the extent, one for the count
    /// in a zoomed range, and one that returns the points or one row per bucket.
    public func metricSeries(runID: String, key: String, axis: MetricAxis, from: Double?, to: Double?, maxPoints: Int) async throws
        -> MetricSeries
    {
        let limit = max(MetricSeries.pointMinimum, min(maxPoints, MetricSeries.pointLimit))
        let col = axis.column
        let finite = MetricTiles.finiteSQL
        let floor = driver.dialect.floorOfNonNegative
        return try await read { db in
            // What the range is, in stored units: from the tiles, or from one scan of the points.
            let all: Int, finiteCount: Int, origin: Int64, minX: Int64, maxX: Int64
            let layout = try await MetricTiles.layout(db, runID: runID, key: key, axis: axis)
            if let layout {
                (all, finiteCount, origin) = (Int(clamping: layout.points), Int(clamping: layout.finite), layout.origin)
                guard let first = layout.groups.first, let last = layout.groups.last else {
                    return MetricSeries(points: [], total: 0, exact: true, nonFinite: all, origin: origin, extent: nil)
                }
                (minX, maxX) = (first.minX, last.maxX)
            } else {
                let head = try await db.query(
                    """
                    SELECT COUNT(*), MIN(timestamp), SUM(CASE WHEN \(finite) THEN 1 ELSE 0 END),
                      MIN(CASE WHEN \(finite) THEN \(col) END), MAX(CASE WHEN \(finite) THEN \(col) END)
                    FROM metrics WHERE run_uuid = ? AND key = ?
                    """, [.text(runID), .text(key)])
                guard let h = head.first, h.int(0) > 0 else {
                    return MetricSeries(points: [], total: 0, exact: true, nonFinite: 0, origin: 0, extent: nil)
                }
                (all, finiteCount, origin) = (Int(clamping: h.int(0)), Int(clamping: h.int(2)), h.int(1))
                guard finiteCount > 0, let lo = h.optionalInt(3), let hi = h.optionalInt(4) else {
                    return MetricSeries(points: [], total: 0, exact: true, nonFinite: all, origin: origin, extent: nil)
                }
                (minX, maxX) = (lo, hi)
            }
            let shift = axis == .relative ? Double(origin) : 0
            let extent = (Double(minX) - shift)...(Double(maxX) - shift)
            func series(_ points: [MetricSeries.Point], total: Int, exact: Bool) -> MetricSeries {
                MetricSeries(points: points, total: total, exact: exact, nonFinite: all - finiteCount, origin: origin, extent: extent)
            }
            // Points with from <= x <= to, the bounds in either order, as integers the column
            // compares with exactly.
            var (a, b) = (from.map { $0 + shift }, to.map { $0 + shift })
            if let x = a, let y = b, x > y { (a, b) = (y, x) }
            let lo = max(a.map(Self.int64Ceil) ?? minX, minX)
            let hi = min(b.map(Self.int64Floor) ?? maxX, maxX)
            if lo > hi { return series([], total: 0, exact: true) }

            /// The finite points with x in [l, h] (and, when given, timestamps in `ts`: an index range).
            func range(_ l: Int64, _ h: Int64, _ ts: ClosedRange<Int64>?) -> (String, [SQLValue]) {
                var sql = "run_uuid = ? AND key = ? AND \(finite) AND \(col) >= ? AND \(col) <= ?"
                var binds: [SQLValue] = [.text(runID), .text(key), .int(l), .int(h)]
                if let ts, axis == .step {
                    sql += " AND timestamp >= ? AND timestamp <= ?"
                    binds += [.int(ts.lowerBound), .int(ts.upperBound)]
                }
                return (sql, binds)
            }
            func exactPoints(_ l: Int64, _ h: Int64, _ ts: ClosedRange<Int64>?, limit: Int) async throws -> [MetricSeries.Point] {
                let (cond, binds) = range(l, h, ts)
                return try await db.query(
                    "SELECT \(col), value FROM metrics WHERE \(cond) ORDER BY \(col), timestamp, step, value LIMIT ?",
                    binds + [.int(Int64(limit))]
                ).map { .exact(Double($0.int(0)) - shift, $0.double(1)) }
            }

            var ts: ClosedRange<Int64>? = nil
            if let groups = layout?.groups {
                // Runs of tiles wholly in range, and at most one partly in range at each end.
                let first = Self.firstGroup(groups, endingAtOrAfter: lo)
                var last = first
                while last < groups.count && groups[last].minX <= hi { last += 1 }
                let touched = groups[first..<last]
                if touched.isEmpty { return series([], total: 0, exact: true) }
                ts = touched.map(\.minTS).min()!...touched.map(\.maxTS).max()!
                let inside = touched.filter { $0.minX >= lo && $0.maxX <= hi }
                let edges = touched.filter { $0.minX < lo || $0.maxX > hi }
                let edgePoints = edges.reduce(Int64(0)) { $0 + $1.finite }
                if inside.count >= limit / 2 && edgePoints <= 16 * MetricTiles.tileSize {
                    var elements = inside.map { g in
                        var p = g.point
                        p.x -= shift
                        return p
                    }
                    for g in edges {
                        elements += try await exactPoints(max(lo, g.minX), min(hi, g.maxX), g.minTS...g.maxTS, limit: Int(g.finite))
                    }
                    elements.sort { $0.x < $1.x }
                    let buckets = Self.bucket(elements, lo: Double(lo) - shift, hi: Double(hi) - shift, count: limit)
                    return series(MetricSeries.lttb(buckets), total: elements.reduce(0) { $0 + $1.count }, exact: false)
                }
            }
            let (cond, rangeBinds) = range(lo, hi, ts)
            let inRange =
                lo == minX && hi == maxX
                ? finiteCount
                : Int(clamping: try await db.query("SELECT COUNT(*) FROM metrics WHERE \(cond)", rangeBinds).first?.int(0) ?? 0)
            if inRange <= limit {
                return series(try await exactPoints(lo, hi, ts, limit: limit), total: inRange, exact: true)
            }
            // Buckets of equal width over [lo, hi]; the last one includes hi. The mean adds up only
            // summable values (`MetricTiles.summableSQL`).
            let x = "CAST(\(col) AS DOUBLE PRECISION)"
            let (loD, hiD) = (Double(lo), Double(hi))
            let scale = hiD > loD ? Double(limit) / (hiD - loD) : 0
            let rows = try await db.query(
                """
                SELECT \(floor("(\(x) - ?) * ?")) AS b, COUNT(*), MIN(value), MAX(value),
                  AVG(CASE WHEN \(MetricTiles.summableSQL) THEN value END), AVG(\(x))
                FROM metrics WHERE \(cond) GROUP BY b ORDER BY b
                """, [.double(loD), .double(scale)] + rangeBinds)
            var buckets: [(b: Int64, p: MetricSeries.Point)] = []
            for r in rows {
                let b = min(r.int(0), Int64(limit - 1))
                let (mn, mx) = (r.double(2), r.double(3))
                let mean = r.optionalDouble(4) ?? (mn / 2 + mx / 2)
                let p = MetricSeries.Point(x: r.double(5) - shift, y: mean, min: mn, max: mx, mean: mean, count: Int(clamping: r.int(1)))
                if let last = buckets.last, last.b == b {
                    // The bucket at hi spills into the last one.
                    buckets[buckets.count - 1].p = Self.merged(last.p, p)
                } else {
                    buckets.append((b, p))
                }
            }
            return series(MetricSeries.lttb(buckets.map(\.p)), total: inRange, exact: false)
        }
    }

    /// The index of the first group whose x range ends at or after `x` (binary search: groups are
    /// in x order and do not overlap).
    static func firstGroup(_ groups: [MetricTiles.Tile], endingAtOrAfter x: Int64) -> Int {
        var (l, h) = (0, groups.count)
        while l < h {
            let m = (l + h) / 2
            if groups[m].maxX < x { l = m + 1 } else { h = m }
        }
        return l
    }

    /// Two buckets' points as one, weighted by count.
    static func merged(_ q: MetricSeries.Point, _ p: MetricSeries.Point) -> MetricSeries.Point {
        let w = Double(q.count + p.count)
        let (wq, wp) = (Double(q.count) / w, Double(p.count) / w)
        let mean = q.mean * wq + p.mean * wp
        return MetricSeries.Point(
            x: q.x * wq + p.x * wp, y: mean, min: Swift.min(q.min, p.min), max: Swift.max(q.max, p.max), mean: mean, count: q.count + p.count)
    }

    /// Points and summaries in x order, gathered into `count` buckets of equal width over [lo, hi]
    /// (each by its x; the last bucket includes hi), empty buckets left out.
    static func bucket(_ elements: [MetricSeries.Point], lo: Double, hi: Double, count: Int) -> [MetricSeries.Point] {
        let scale = hi > lo ? Double(count) / (hi - lo) : 0
        var out: [(b: Int, p: MetricSeries.Point)] = []
        for e in elements {
            let f = ((e.x - lo) * scale).rounded(.down)
            let b = f.isFinite ? Int(Swift.max(0, Swift.min(f, Double(count - 1)))) : 0
            if let last = out.last, last.b == b {
                out[out.count - 1].p = merged(last.p, e)
            } else {
                out.append((b, e))
            }
        }
        return out.map(\.p)
    }

    /// A client's bound as a stored integer, without trapping on any double.
    static func int64Floor(_ d: Double) -> Int64 {
        if d.isNaN { return 0 }
        if d <= -9.2e18 { return .min }
        if d >= 9.2e18 { return .max }
        return Int64(d.rounded(.down))
    }

    static func int64Ceil(_ d: Double) -> Int64 {
        if d.isNaN { return 0 }
        if d <= -9.2e18 { return .min }
        if d >= 9.2e18 { return .max }
        return Int64(d.rounded(.up))
    }
}
