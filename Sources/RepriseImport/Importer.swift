import Foundation
import RepriseCore
import RepriseSQL

/// What an import shows while it runs: one phase at a time, with a total and a count.
public protocol ImportProgress: Sendable {
    func begin(_ phase: String, total: Int)
    func advance(_ n: Int)
    func end()
}

/// The import was interrupted between two batches; everything before is committed, and running
/// the same import again continues from there.
public struct ImportInterrupted: Error, CustomStringConvertible {
    public var description: String {
        "The import was interrupted; what it had brought across is kept. Run the same command again to continue where it stopped."
    }
}

/// One line of the verification: an entity's count on both sides.
public struct ImportCheck: Sendable {
    public var entity: ImportEntity
    public var source: Int
    public var here: Int
    public var ok: Bool { source == here }
}

/// What an import did and what its verification found.
public struct ImportReport: Sendable {
    public var source: String
    public var facts: [String] = []
    public var tally = ImportTally()
    public var checks: [ImportCheck] = []
    /// (run, key, points, identical)
    public var histories: [(runID: String, key: String, points: Int, identical: Bool)] = []
    public var artifacts: ArtifactCopyReport? = nil
    public var notImported: [String] = []
    public var notes: [String] = []
    public var seconds: Double = 0

    /// Whether every count matched, every sampled history was identical and every copied artifact's checksum matched.
    public var verified: Bool {
        checks.allSatisfy(\.ok) && histories.allSatisfy(\.identical) && (artifacts?.mismatched.isEmpty ?? true)
    }
}

/// Brings a source into a store: experiments, then runs page by page (each page one transaction,
/// its place stored with it, the next page read while this one is written), then logged models,
/// the registry and webhooks; then verifies what it brought. Run again after an interruption, it
/// continues after the last page that committed; run again after it finished, it brings the
/// experiments, runs, models, versions and aliases the source gained since. An entity already here
/// is left as it is: a run that changed in the source after it was imported shows as a difference
/// in the verification, not as an update.
public struct Importer: Sendable {
    public var store: SQLTrackingStore
    public var source: any ImportSource
    public var provenance: ImportProvenance
    /// Runs per transaction.
    public var batchRuns = 200
    /// Metric histories compared point by point.
    public var sampledHistories = 20
    /// About this many metric points per page of runs, at most.
    static let pointsPerPage = 1_000_000
    public var artifacts: ArtifactCopier? = nil

    public init(store: SQLTrackingStore, source: any ImportSource, provenance: ImportProvenance) {
        self.store = store
        self.source = source
        self.provenance = provenance
    }

    public func run(progress: any ImportProgress) async throws -> ImportReport {
        let started = ContinuousClock.now
        var report = ImportReport(source: provenance.source)
        report.facts = try await source.describe()
        let totals = try await source.totals()
        let prefix = provenance.checkpointPrefix
        let runsKey = prefix + "runs"
        let modelsKey = prefix + "logged_models"

        // Experiments first: runs and models name them.
        var batch = ImportBatch()
        batch.experiments = try await source.experiments()
        progress.begin("experiments", total: batch.experiments.count)
        report.tally.add(try await store.importBatch(batch, from: provenance))
        progress.advance(batch.experiments.count)
        progress.end()

        // Runs, a page per transaction; the next page is read while this one is written.
        let resumeRun = try await store.importCheckpoint(runsKey)
        if resumeRun != nil { report.notes.append("continued an interrupted import after run \(resumeRun!)") }
        var done = 0
        if let resumeRun { done = try await idsUpTo(resumeRun).count }
        progress.begin("runs", total: totals[.runs] ?? 0)
        progress.advance(done)
        let source = self.source
        @Sendable func page(after: String?, size: Int) async throws -> (ids: [String], runs: [ImportedRun]) {
            let ids = try await source.runIDs(after: after, limit: size)
            return (ids, try await source.runs(ids))
        }
        // Pages shrink when their runs hold many points, so memory stays bounded by points, not runs.
        var pageSize = batchRuns
        let firstSize = pageSize
        var next = Task { try await page(after: resumeRun, size: firstSize) }
        while true {
            let (ids, runs) = try await next.value
            guard let last = ids.last else { break }
            let points = runs.reduce(0) { $0 + $1.history.count }
            if points > Self.pointsPerPage { pageSize = max(1, pageSize / 2) } else if points < Self.pointsPerPage / 4 { pageSize = min(batchRuns, pageSize * 2) }
            let size = pageSize
            next = Task { try await page(after: last, size: size) }
            var b = ImportBatch()
            b.runs = runs
            report.tally.add(try await store.importBatch(b, from: provenance, checkpoint: (runsKey, last)))
            progress.advance(ids.count)
            if Task.isCancelled {
                next.cancel()
                throw ImportInterrupted()
            }
        }
        progress.end()

        // Logged models, a page per transaction.
        var modelCursor = try await store.importCheckpoint(modelsKey)
        progress.begin("logged models", total: totals[.loggedModels] ?? 0)
        while true {
            let models = try await source.loggedModels(after: modelCursor, limit: pageSize)
            guard let last = models.last?.modelID else { break }
            var b = ImportBatch()
            b.loggedModels = models
            report.tally.add(try await store.importBatch(b, from: provenance, checkpoint: (modelsKey, last)))
            modelCursor = last
            progress.advance(models.count)
            if Task.isCancelled { throw ImportInterrupted() }
        }
        progress.end()

        // The registry (prompts are registered models to MLflow) and webhooks: one transaction.
        if Task.isCancelled { throw ImportInterrupted() }
        var last = ImportBatch()
        last.registeredModels = try await source.registeredModels()
        last.webhooks = try await source.webhooks()
        progress.begin("registered models", total: last.registeredModels.count)
        report.tally.add(try await store.importBatch(last, from: provenance))
        progress.advance(last.registeredModels.count)
        progress.end()
        let secretless = last.webhooks.filter(\.hadSecret).map(\.webhook.name)
        if !secretless.isEmpty {
            report.notes.append(
                "webhooks imported disabled, without their signing secrets (MLflow keeps them encrypted under its own key): \(secretless.joined(separator: ", ")). Give each a new secret and enable it (MlflowClient().update_webhook(id, secret=..., status=\"ACTIVE\")).")
        }

        if let artifacts {
            report.artifacts = try await artifacts.copy(experiments: batch.experiments, progress: progress)
        }
        try await store.clearImportCheckpoints(prefix: prefix)
        report.notImported = try await source.notImported()
        try await verify(&report, totals: totals, experiments: batch.experiments, registry: last, progress: progress)
        report.seconds = Double((ContinuousClock.now - started).components.seconds)
            + Double((ContinuousClock.now - started).components.attoseconds) / 1e18
        return report
    }

    /// The run ids up to and including `last`, for counting what an earlier, interrupted import did.
    private func idsUpTo(_ last: String) async throws -> [String] {
        var out: [String] = []
        var cursor: String? = nil
        while true {
            let ids = try await source.runIDs(after: cursor, limit: 5000)
            for id in ids where id <= last { out.append(id) }
            guard let l = ids.last, l < last else { return out }
            cursor = l
        }
    }

    /// Counts on both sides for everything the source holds, and histories compared point by point.
    func verify(
        _ report: inout ImportReport, totals: [ImportEntity: Int], experiments: [Experiment], registry: ImportBatch,
        progress: any ImportProgress
    ) async throws {
        var here: [ImportEntity: Int] = [:]
        var there: [ImportEntity: Int] = [:]
        progress.begin("verifying runs", total: totals[.runs] ?? 0)
        var cursor: String? = nil
        while true {
            let ids = try await source.runIDs(after: cursor, limit: 1000)
            guard let last = ids.last else { break }
            for (k, v) in try await source.runCounts(ids) { there[k, default: 0] += v }
            for (k, v) in try await store.importedRunCounts(ids) { here[k, default: 0] += v }
            cursor = last
            progress.advance(ids.count)
            if Task.isCancelled { throw ImportInterrupted() }
        }
        progress.end()
        var modelIDs: [String] = []
        var modelCursor: String? = nil
        while true {
            let models = try await source.loggedModels(after: modelCursor, limit: 1000)
            guard let last = models.last?.modelID else { break }
            modelIDs += models.map(\.modelID)
            modelCursor = last
        }
        let names = registry.registeredModels.map(\.model.name)
        for (k, v) in try await store.importedCounts(
            experiments: experiments.map(\.experimentID), loggedModels: modelIDs, registeredModels: names,
            webhooks: registry.webhooks.map(\.webhook.id))
        {
            here[k] = v
        }
        there[.experiments] = experiments.count
        there[.loggedModels] = modelIDs.count
        there[.registeredModels] = names.count
        there[.modelVersions] = registry.registeredModels.reduce(0) { $0 + $1.versions.count }
        there[.aliases] = registry.registeredModels.reduce(0) { $0 + $1.model.aliases.count }
        there[.webhooks] = registry.webhooks.count
        report.checks = ImportEntity.allCases.compactMap { e in
            guard let s = there[e] else { return nil }
            return ImportCheck(entity: e, source: s, here: here[e] ?? 0)
        }

        let samples = try await source.sampleHistories(limit: sampledHistories)
        progress.begin("comparing metric histories", total: samples.count)
        for (run, key) in samples {
            let a = try await source.history(runID: run, key: key)
            let b = try await store.metricHistory(runID: run, key: key, offset: 0, limit: nil).items
            let same = a.count == b.count
                && zip(a, b).allSatisfy { x, y in
                    x.step == y.step && x.timestamp == y.timestamp && (x.value == y.value || (x.value.isNaN && y.value.isNaN))
                }
            report.histories.append((run, key, a.count, same))
            progress.advance(1)
            if Task.isCancelled { throw ImportInterrupted() }
        }
        progress.end()
    }
}
