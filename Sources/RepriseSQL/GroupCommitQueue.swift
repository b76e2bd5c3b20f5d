import Foundation

/// The queue behind group commit, shared by the drivers: write bodies wait here while a batch
/// commits, and the next batch takes everything queued meanwhile. It decides only the order and the
/// batches; the driver runs each batch in one transaction (each body in its own savepoint) and
/// acknowledges its bodies after the commit.
///
/// One drainer at a time: `add` says when the caller must start one, and `nextBatch` ends the drain
/// (returns an empty batch) once nothing is queued.
public final class GroupCommitQueue<Job>: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [Job] = []
    private var draining = false
    private var closed = false
    /// At most this many bodies share one transaction.
    public let maxBatch: Int

    public init(maxBatch: Int = .max) { self.maxBatch = max(1, maxBatch) }

    public enum Admission {
        /// Queued; no drainer was running, so the caller starts one.
        case startDrain
        /// Queued; the running drainer will take it.
        case queued
        /// Refused: the driver is shut down.
        case closed
    }

    public func add(_ job: Job) -> Admission {
        let (admission, depth): (Admission, Int) = lock.withLock {
            if closed { return (.closed, 0) }
            pending.append(job)
            let start = !draining
            draining = true
            return (start ? .startDrain : .queued, pending.count)
        }
        if depth > 0 { SQLDriverMetrics.writeQueueDepth(depth) }
        return admission
    }

    /// The next batch, oldest first; empty (and the drain over) when nothing is queued.
    public func nextBatch() -> [Job] {
        lock.withLock {
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            if batch.isEmpty { draining = false }
            return batch
        }
    }

    /// Refuses every later `add`; what is queued still drains.
    public func close() { lock.withLock { closed = true } }
}

/// Where a write body leaves its result for the acknowledgement that comes after the commit.
public final class ResultBox<T>: @unchecked Sendable {
    public var result: Result<T, any Error>?
    public init() {}
}
