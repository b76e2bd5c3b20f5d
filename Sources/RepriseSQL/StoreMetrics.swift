import CoreMetrics

/// The store's metrics (swift-metrics; exported by `--expose-prometheus`). Created on first use, after
/// the server has chosen its metrics backend.
enum StoreMetrics {
    /// Time from a write's call to its durable acknowledgement (queueing, retries and commit included).
    static let writes = Timer(label: "reprise_store_write_seconds", preferredDisplayUnit: .seconds)
    /// Time of a read on its snapshot.
    static let reads = Timer(label: "reprise_store_read_seconds", preferredDisplayUnit: .seconds)
    static let queueDepth = Gauge(label: "reprise_store_write_queue_depth")
}

/// For drivers: how many write bodies wait for the next commit.
public enum SQLDriverMetrics {
    public static func writeQueueDepth(_ n: Int) { StoreMetrics.queueDepth.record(n) }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : ns.addingReportingOverflow(atto / 1_000_000_000).partialValue
    }
}
