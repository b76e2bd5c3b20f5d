import Logging
import RepriseCore
import ServiceLifecycle

/// Writes a signed checkpoint of the audit chain's head outside the database every few seconds
/// while the head moves, and once more on shutdown, so `audit verify` can tell when events were
/// cut from the end of the chain. Events written after the last checkpoint are the window this
/// cannot cover (see docs/security.md).
public struct AuditCheckpointer: Service {
    let governance: any GovernanceStore
    let interval: Duration
    let logger: Logger

    public init(governance: any GovernanceStore, interval: Duration = .seconds(2), logger: Logger) {
        self.governance = governance
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                // Shutting down: the checkpoint below, outside the cancelled loop, is the last one.
                if Task.isCancelled { break }
                await checkpointNow()
            }
        }
        await checkpointNow()
    }

    private func checkpointNow() async {
        do {
            _ = try await governance.checkpointAudit()
        } catch where error is CancellationError || Task.isCancelled {
            // Cut short by shutdown; the final checkpoint follows.
        } catch {
            logger.warning("audit checkpoint failed", metadata: ["error": "\(error)"])
        }
    }
}
