import CAllocator
import CoreMetrics
import NIOPosix
import ServiceLifecycle

/// Hands the memory glibc keeps after frees back to the system, every few seconds.
///
/// glibc returns freed memory only from the top of each arena; pages freed in the middle stay
/// resident until reused. Under mixed load (bench/soak.py) live memory levels off within minutes
/// (16–22 MiB, SQLite's caches included) while the freed-but-kept share grew 4 → 25 MiB in 40
/// minutes in steps, and RSS with it. `malloc_trim(0)` gives back every whole free page in every
/// arena (`madvise`, the addresses stay mapped); a page used again is faulted back in. Measured
/// cost and effect: docs/benchmarks.md, "Allocator trimming".
///
/// `REPRISE_MALLOC_TRIM_S` sets the interval in seconds; 0 turns it off.
struct AllocatorTrimmer: Service {
    let interval: Duration
    /// Counts the trims done (with `--expose-prometheus`).
    let trims: CoreMetrics.Counter?

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                await Self.trim()
                trims?.increment()
            }
        }
    }

    /// One trim, on the blocking-I/O pool rather than a cooperative thread (it walks every
    /// arena's free lists).
    static func trim() async {
        _ = try? await NIOThreadPool.singleton.runIfActive { reprise_malloc_trim() }
    }
}
