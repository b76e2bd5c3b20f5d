import Foundation
import RepriseClient
import RepriseCore

/// A live MLflow server read through its REST API: for when its database cannot be reached. Slower
/// than the database (every metric history is one or more requests), the same entities.
///
/// The run list is read once, at open (search pages of 1,000 carry each run's info, params, tags,
/// latest metrics and inputs), and kept sorted by id so an interrupted import continues by id as it
/// does from a database. Histories are read when a page of runs is written, several at a time.
public final class MLflowServerSource: ImportSource, @unchecked Sendable {
    public let client: RepriseClient
    public let displayName: String
    public let kind = "mlflow-server"
    /// Requests in flight at once for histories.
    let concurrency: Int
    // Set once by `open`, read-only after.
    private(set) var experimentList: [Experiment] = []
    private(set) var runList: [Run] = []
    private(set) var runIndex: [String: Int] = [:]

    static let api = "/api/2.0/mlflow"

    public static func open(client: RepriseClient, displayName: String, concurrency: Int = 8) async throws -> MLflowServerSource {
        let source = MLflowServerSource(client: client, displayName: displayName, concurrency: concurrency)
        try await source.load()
        return source
    }

    init(client: RepriseClient, displayName: String, concurrency: Int) {
        self.client = client
        self.displayName = displayName
        self.concurrency = concurrency
    }

    /// Every page of a paged endpoint: `next_page_token` until it is absent.
    func pages(_ method: HTTPMethodName, _ path: String, body: JSONObject = JSONObject(), query: [(String, String)] = [], items: String)
        async throws -> [JSONValue]
    {
        var out: [JSONValue] = []
        var token: String? = nil
        repeat {
            let page: JSONValue
            switch method {
            case .post:
                var b = body
                if let token { b["page_token"] = .string(token) }
                page = try await client.call(.POST, path, body: .object(b))
            case .get:
                page = try await client.call(.GET, path, query: query + (token.map { [("page_token", $0)] } ?? []))
            }
            out += page.wireArray(items)
            token = page["next_page_token"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return out
    }

    enum HTTPMethodName { case get, post }

    private func load() async throws {
        guard await client.health() else {
            throw RepriseError.invalid("No MLflow server answers at \(displayName) (GET /health). Check the URL, or import from its database instead.")
        }
        experimentList = try await pages(
            .post, "\(Self.api)/experiments/search", body: JSONObject([("max_results", .int(1000)), ("view_type", .string("ALL"))]),
            items: "experiments"
        ).map(Experiment.init(wire:))
        var runs: [Run] = []
        // Search takes at most 100 experiments at a time.
        let ids = experimentList.map(\.experimentID)
        for start in stride(from: 0, to: ids.count, by: 100) {
            let chunk = ids[start..<min(start + 100, ids.count)]
            runs += try await pages(
                .post, "\(Self.api)/runs/search",
                body: JSONObject([
                    ("experiment_ids", .array(chunk.map(JSONValue.string))), ("max_results", .int(1000)), ("run_view_type", .string("ALL")),
                ]), items: "runs"
            ).map(Run.init(wire:))
        }
        // Search pages by offset: a run listed twice while the server took writes is kept once.
        var seen: Set<String> = []
        runList = runs.sorted { $0.info.runID < $1.info.runID }.filter { seen.insert($0.info.runID).inserted }
        runIndex = Dictionary(runList.enumerated().map { ($1.info.runID, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func describe() async throws -> [String] {
        [
            "read through the REST API of \(displayName)",
            "over REST, the verification compares with what the server listed during this import (runs, params, tags, the histories read); import from the database for an independent count",
        ]
    }

    public func totals() async throws -> [ImportEntity: Int] {
        [
            .loggedModels: try await allLoggedModels().count,
            .experiments: experimentList.count, .runs: runList.count,
            .params: runList.reduce(0) { $0 + $1.params.count }, .tags: runList.reduce(0) { $0 + $1.tags.count },
            .datasets: runList.reduce(0) { $0 + $1.datasetInputs.count },
        ]
    }

    public func experiments() async throws -> [Experiment] { experimentList }

    public func runIDs(after: String?, limit: Int) async throws -> [String] {
        let start = after.map { a in runList.firstIndex { $0.info.runID > a } ?? runList.count } ?? 0
        return runList[start..<min(start + limit, runList.count)].map(\.info.runID)
    }

    /// Every point of one history, page by page.
    public func history(runID: String, key: String) async throws -> [Metric] {
        let points = try await pages(
            .get, "\(Self.api)/metrics/get-history", query: [("run_id", runID), ("metric_key", key), ("max_results", "25000")],
            items: "metrics"
        ).map(Metric.init(wire:))
        return points.map { Metric(key: key, value: $0.value, timestamp: $0.timestamp, step: $0.step) }.sorted {
            ($0.timestamp, $0.step, $0.value.isNaN ? 0 : $0.value) < ($1.timestamp, $1.step, $1.value.isNaN ? 0 : $1.value)
        }
    }

    public func runs(_ ids: [String]) async throws -> [ImportedRun] {
        let wanted = ids.compactMap { runIndex[$0].map { runList[$0] } }
        // Every (run, key) history, `concurrency` requests at a time.
        let pairs = wanted.flatMap { r in r.metrics.map { (r.info.runID, $0.key) } }
        var histories: [String: [Metric]] = [:]
        try await withThrowingTaskGroup(of: (String, [Metric]).self) { group in
            var next = 0
            func add() {
                guard next < pairs.count else { return }
                let (run, key) = pairs[next]
                next += 1
                group.addTask { (run, try await self.history(runID: run, key: key)) }
            }
            for _ in 0..<concurrency { add() }
            while let (run, points) = try await group.next() {
                histories[run, default: []] += points
                add()
            }
        }
        cacheLock.withLock {
            for r in wanted { pointsRead[r.info.runID] = histories[r.info.runID]?.count ?? 0 }
        }
        return wanted.map { r in
            ImportedRun(
                info: r.info, deletedTime: nil, params: r.params, tags: r.tags, history: histories[r.info.runID] ?? [], latest: r.metrics,
                datasetInputs: r.datasetInputs, modelInputs: r.modelInputs, modelOutputs: r.modelOutputs)
        }
    }

    public func loggedModels(after: String?, limit: Int) async throws -> [LoggedModel] {
        let all = try await allLoggedModels()
        let start = after.map { a in all.firstIndex { $0.modelID > a } ?? all.count } ?? 0
        return Array(all[start..<min(start + limit, all.count)])
    }

    private var loggedModelCache: [LoggedModel]? = nil
    /// Points read per run by this import, so the verification counts them without reading again.
    private var pointsRead: [String: Int] = [:]
    private let cacheLock = NSLock()

    private func allLoggedModels() async throws -> [LoggedModel] {
        if let cached = cacheLock.withLock({ loggedModelCache }) { return cached }
        var models: [LoggedModel] = []
        let ids = experimentList.map(\.experimentID)
        for start in stride(from: 0, to: ids.count, by: 100) {
            let chunk = ids[start..<min(start + 100, ids.count)]
            do {
                models += try await pages(
                    .post, "\(Self.api)/logged-models/search",
                    body: JSONObject([("experiment_ids", .array(chunk.map(JSONValue.string))), ("max_results", .int(100))]), items: "models"
                ).map(LoggedModel.init(wire:))
            } catch let e as RepriseClientError {
                // An MLflow 2.x server has no logged models.
                if case .status(404, _) = e { break }
                throw e
            }
        }
        let sorted = models.sorted { $0.modelID < $1.modelID }
        cacheLock.withLock { loggedModelCache = sorted }
        return sorted
    }

    public func registeredModels() async throws -> [ImportedRegisteredModel] {
        // MLflow 3 keeps prompts in the registry and leaves them out of a plain search.
        var models: [String: RegisteredModel] = [:]
        for filter in ["", "tags.`mlflow.prompt.is_prompt` = 'true'"] {
            var query = [("max_results", "1000")]
            if !filter.isEmpty { query.append(("filter", filter)) }
            for m in try await pages(.get, "/api/2.0/mlflow/registered-models/search", query: query, items: "registered_models") {
                let model = try RegisteredModel(wire: m)
                models[model.name] = model
            }
        }
        var out: [ImportedRegisteredModel] = []
        for name in models.keys.sorted() {
            let escaped = name.replacingOccurrences(of: "'", with: "\\'")
            // A prompt's versions, too, are left out of a plain search.
            let isPrompt = models[name]!.tags.contains { $0.key == "mlflow.prompt.is_prompt" && $0.value == "true" }
            let filter = "name = '\(escaped)'" + (isPrompt ? " AND tags.`mlflow.prompt.is_prompt` = 'true'" : "")
            let versions = try await pages(
                .get, "/api/2.0/mlflow/model-versions/search", query: [("filter", filter), ("max_results", "10000")],
                items: "model_versions"
            ).map(ModelVersion.init(wire:)).sorted { $0.version < $1.version }
            out.append(ImportedRegisteredModel(model: models[name]!, versions: versions))
        }
        return out
    }

    public func webhooks() async throws -> [ImportedWebhook] {
        do {
            // The API never shows whether a webhook has a secret: each is taken to have one.
            return try await pages(.get, "/api/2.0/mlflow/webhooks", query: [("max_results", "1000")], items: "webhooks")
                .map { ImportedWebhook(webhook: try Webhook(wire: $0), hadSecret: true) }
        } catch let e as RepriseClientError {
            if case .status(404, _) = e { return [] }
            throw e
        }
    }

    public func runCounts(_ ids: [String]) async throws -> [ImportEntity: Int] {
        let wanted = ids.compactMap { runIndex[$0].map { runList[$0] } }
        var points = 0
        for r in wanted {
            // Runs an earlier, interrupted import brought are read again here.
            if let known = cacheLock.withLock({ pointsRead[r.info.runID] }) {
                points += known
                continue
            }
            for m in r.metrics { points += try await history(runID: r.info.runID, key: m.key).count }
        }
        return [
            .runs: wanted.count, .params: wanted.reduce(0) { $0 + $1.params.count }, .tags: wanted.reduce(0) { $0 + $1.tags.count },
            .metricPoints: points, .datasets: wanted.reduce(0) { $0 + $1.datasetInputs.count },
        ]
    }

    public func sampleHistories(limit: Int) async throws -> [(runID: String, key: String)] {
        let pairs = runList.flatMap { r in r.metrics.map { (runID: r.info.runID, key: $0.key, step: $0.step) } }
        let longest = pairs.sorted { $0.step > $1.step }.prefix(limit / 2)
        var seen = Set(longest.map { $0.runID + "\u{0}" + $0.key })
        var out = longest.map { (runID: $0.runID, key: $0.key) }
        for p in pairs.shuffled() where out.count < limit && seen.insert(p.runID + "\u{0}" + p.key).inserted {
            out.append((p.runID, p.key))
        }
        return out
    }

    public func notImported() async throws -> [String] {
        ["traces: not read over REST (Reprise does not store traces yet); they stay in the MLflow store"]
    }

    public func close() async throws {}
}
