import Foundation
import RepriseClient
import RepriseCore

/// `reprise runbook`: the reproducibility report of a run, and a script that reproduces it.
public struct Runbook: Sendable {
    public let client: RepriseClient

    public init(client: RepriseClient) { self.client = client }

    public func build(_ runID: String) async throws -> RunbookDocument.Output {
        let r = try await RunView.load(client, runID)
        var baseline: RunView?
        if let b = r.tags[PassportTag.baseline], !b.isEmpty { baseline = try? await RunView.load(client, b) }
        let lineage = (try? await client.call(.GET, "/api/reprise/v1/lineage", query: [("entity", "run:\(runID)"), ("depth", "6")]))?["lineage"]
        let reproductions = (try? await client.call(.GET, "/api/reprise/v1/reproductions", query: [("run_id", runID)]))?["reproductions"]
        return RunbookDocument.build(
            RunbookInput(
                runID: runID, name: r.name, experimentID: r.experimentID, status: r.status, startTime: r.startTime, endTime: r.endTime,
                tags: r.tags, params: r.params, metrics: r.metrics, baselineID: baseline?.id, baselineMetrics: baseline?.metrics ?? [:],
                reproductions: reproductions, lineage: lineage, trackingURI: client.baseURL))
    }
}
