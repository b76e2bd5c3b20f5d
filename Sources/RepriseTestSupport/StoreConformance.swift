import RepriseCore
import Testing

/// The behaviour every `TrackingStore` backend must show. Each backend's test target calls these
/// from its own `@Test` functions with a factory for fresh, empty stores.
public struct StoreConformance: Sendable {
    let make: @Sendable () async throws -> any TrackingStore

    /// - Parameter make: returns a new, empty, migrated store each time it is called.
    public init(make: @escaping @Sendable () async throws -> any TrackingStore) { self.make = make }

    static func code(of body: () async throws -> Void) async -> RepriseError.Code? {
        do {
            try await body()
            return nil
        } catch let e as RepriseError {
            return e.code
        } catch {
            return RepriseError.Code(rawValue: "UNEXPECTED \(error)")
        }
    }

    static func message(of body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let e as RepriseError {
            return e.message
        } catch {
            return "\(error)"
        }
    }

    func run(_ s: any TrackingStore, in exp: String, name: String = "", start: Int64 = 1000) async throws -> String {
        try await s.createRun(CreateRunInput(experimentID: exp, userID: "tester", runName: name, startTime: start, tags: []))
            .info.runID
    }

    public func experiments() async throws {
        let s = try await make()
        let d = try await s.getExperiment(id: "0")
        #expect(d.name == "Default")
        #expect(d.lifecycleStage == .active)
        let id = try await s.createExperiment(name: "exp-a", artifactLocation: nil, tags: [KeyValue("k", "v")])
        #expect(id == "1")
        let e = try await s.getExperiment(name: "exp-a")
        #expect(e.experimentID == id)
        #expect(e.tags == [KeyValue("k", "v")])
        #expect(e.artifactLocation.hasSuffix("/1"))
        #expect(await Self.code { _ = try await s.createExperiment(name: "exp-a", artifactLocation: nil, tags: []) } == .resourceAlreadyExists)
        #expect(await Self.code { _ = try await s.getExperiment(id: "999") } == .resourceDoesNotExist)
        #expect(await Self.code { _ = try await s.getExperiment(id: "abc") } == .invalidParameterValue)
        #expect(await Self.code { _ = try await s.getExperiment(name: "nope") } == .resourceDoesNotExist)

        try await s.renameExperiment(id: id, newName: "exp-b")
        #expect(try await s.getExperiment(id: id).name == "exp-b")
        try await s.setExperimentTag(id: id, tag: KeyValue("k", "v2"))
        #expect(try await s.getExperiment(id: id).tags == [KeyValue("k", "v2")])
        try await s.deleteExperimentTag(id: id, key: "k")
        #expect(try await s.getExperiment(id: id).tags.isEmpty)
        #expect(await Self.code { try await s.deleteExperimentTag(id: id, key: "k") } == .resourceDoesNotExist)

        // Delete cascades to runs; names stay taken; restore brings both back.
        let runID = try await run(s, in: id)
        try await s.deleteExperiment(id: id)
        #expect(try await s.getExperiment(id: id).lifecycleStage == .deleted)
        #expect(try await s.getRun(id: runID).info.lifecycleStage == .deleted)
        #expect(await Self.code { _ = try await s.createExperiment(name: "exp-b", artifactLocation: nil, tags: []) } == .resourceAlreadyExists)
        #expect(await Self.code { try await s.renameExperiment(id: id, newName: "zzz") } == .invalidState)
        #expect(await Self.code { try await s.setExperimentTag(id: id, tag: KeyValue("a", "b")) } == .invalidParameterValue)
        #expect(await Self.code { _ = try await self.run(s, in: id) } == .invalidParameterValue)
        #expect(await Self.code { try await s.deleteExperiment(id: id) } == .resourceDoesNotExist)
        try await s.restoreExperiment(id: id)
        #expect(try await s.getRun(id: runID).info.lifecycleStage == .active)
        #expect(await Self.code { try await s.restoreExperiment(id: id) } == .resourceDoesNotExist)
    }

    public func experimentSearch() async throws {
        let s = try await make()
        for name in ["a", "ab", "Abc"] {
            let id = try await s.createExperiment(name: name, artifactLocation: nil, tags: name == "a" || name == "ab" ? [KeyValue("key", "value")] : [])
            _ = id
            try await Task.sleep(for: .milliseconds(3))  // distinct creation times
        }
        func names(_ filter: String?, _ order: [String] = [], max: Int = 100, token: String? = nil) async throws -> [String] {
            try await s.searchExperiments(
                ExperimentSearchQuery(filter: filter, orderBy: order, viewType: .activeOnly, maxResults: max, pageToken: token)
            ).items.map(\.name)
        }
        #expect(try await names("name LIKE 'a%'") == ["ab", "a"])
        #expect(try await names("tag.key ILIKE '%ALU%'") == ["ab", "a"])
        #expect(try await names("attribute.name != 'a'") == ["Abc", "ab", "Default"])
        #expect(try await names(nil, ["name DESC"]) == ["ab", "a", "Default", "Abc"])
        let first = try await s.searchExperiments(
            ExperimentSearchQuery(filter: nil, orderBy: [], viewType: .activeOnly, maxResults: 2, pageToken: nil))
        #expect(first.items.map(\.name) == ["Abc", "ab"])
        let next = try #require(first.nextOffset)
        #expect(try await names(nil, max: 2, token: PageToken.encode(offset: next)) == ["a", "Default"])
        let deleted = try await s.getExperiment(name: "a").experimentID
        try await s.deleteExperiment(id: deleted)
        #expect(try await names(nil).count == 3)
        let onlyDeleted = try await s.searchExperiments(
            ExperimentSearchQuery(filter: nil, orderBy: [], viewType: .deletedOnly, maxResults: 10, pageToken: nil))
        #expect(onlyDeleted.items.map(\.name) == ["a"])
    }

    public func runsLifecycle() async throws {
        let s = try await make()
        let r = try await s.createRun(
            CreateRunInput(experimentID: "0", userID: "u", runName: nil, startTime: 5, tags: [KeyValue("mlflow.runName", "from-tag")]))
        #expect(r.info.runName == "from-tag")
        #expect(r.info.runID.count == 32)
        #expect(r.info.status == .running)
        #expect(r.info.artifactURI.hasSuffix("/0/\(r.info.runID)/artifacts"))
        let generated = try await s.createRun(CreateRunInput(experimentID: "0", userID: "u", runName: nil, startTime: 5, tags: []))
        #expect(generated.info.runName.split(separator: "-").count == 3)
        #expect(generated.tags.contains(KeyValue("mlflow.runName", generated.info.runName)))
        #expect(await Self.code {
            _ = try await s.createRun(CreateRunInput(experimentID: "0", userID: "u", runName: "a", startTime: 5, tags: [KeyValue("mlflow.runName", "b")]))
        } == .invalidParameterValue)
        #expect(await Self.code { _ = try await s.getRun(id: "deadbeef") } == .resourceDoesNotExist)

        let id = r.info.runID
        let info = try await s.updateRun(id: id, status: .finished, endTime: 99, runName: "renamed")
        #expect(info.status == .finished && info.endTime == 99 && info.runName == "renamed")
        #expect(try await s.getRun(id: id).tags.contains(KeyValue("mlflow.runName", "renamed")))
        try await s.logBatch(runID: id, metrics: [], params: [], tags: [KeyValue("mlflow.runName", "via-tag")], conflictStyle: .single)
        #expect(try await s.getRun(id: id).info.runName == "via-tag")

        try await s.deleteRun(id: id)
        #expect(try await s.getRun(id: id).info.lifecycleStage == .deleted)
        for mutation in [
            { try await s.logBatch(runID: id, metrics: [], params: [KeyValue("p", "1")], tags: [], conflictStyle: .single) },
            { _ = try await s.updateRun(id: id, status: .failed, endTime: nil, runName: nil) },
            { try await s.deleteTag(runID: id, key: "mlflow.runName") },
            { try await s.logInputs(runID: id, datasets: [], modelIDs: []) },
        ] as [@Sendable () async throws -> Void] {
            #expect(await Self.message(of: mutation) == "The run \(id) must be in the 'active' state. Current state is deleted.")
        }
        try await s.restoreRun(id: id)
        try await s.deleteTag(runID: id, key: "mlflow.runName")
        #expect(await Self.code { try await s.deleteTag(runID: id, key: "mlflow.runName") } == .resourceDoesNotExist)
        #expect(await Self.code { try await s.deleteRun(id: "nope") } == .resourceDoesNotExist)
    }

    public func paramsAndMetrics() async throws {
        let s = try await make()
        let id = try await run(s, in: "0")
        try await s.logBatch(runID: id, metrics: [], params: [KeyValue("p", "1")], tags: [], conflictStyle: .single)
        try await s.logBatch(runID: id, metrics: [], params: [KeyValue("p", "1")], tags: [], conflictStyle: .single)
        let single = await Self.message {
            try await s.logBatch(runID: id, metrics: [], params: [KeyValue("p", "2")], tags: [], conflictStyle: .single)
        }
        #expect(single == "Changing param values is not allowed. Param with key='p' was already logged with value='1' for run ID='\(id)'. Attempted logging new value '2'.")
        // A rejected batch leaves nothing behind, not even its valid parts.
        let batch = await Self.message {
            try await s.logBatch(
                runID: id, metrics: [Metric(key: "m", value: 1, timestamp: 1)], params: [KeyValue("q", "1"), KeyValue("p", "3")],
                tags: [KeyValue("t", "v")], conflictStyle: .batch)
        }
        #expect(batch == "Changing param values is not allowed. Params were already logged='[{'key': 'p', 'old_value': '1', 'new_value': '3'}]' for run ID='\(id)'.")
        var r = try await s.getRun(id: id)
        #expect(r.params == [KeyValue("p", "1")])
        #expect(r.metrics.isEmpty)
        #expect(!r.tags.contains(KeyValue("t", "v")))

        // Latest value is the max of (step, timestamp, value), not the last write.
        try await s.logBatch(
            runID: id,
            metrics: [
                Metric(key: "loss", value: 5, timestamp: 10, step: 2), Metric(key: "loss", value: 9, timestamp: 20, step: 1),
                Metric(key: "loss", value: 4, timestamp: 10, step: 2), Metric(key: "loss", value: 5, timestamp: 10, step: 2),
                Metric(key: "nan", value: .nan, timestamp: 1), Metric(key: "inf", value: .infinity, timestamp: 1),
                Metric(key: "ninf", value: -.infinity, timestamp: 1),
            ], params: [], tags: [], conflictStyle: .batch)
        r = try await s.getRun(id: id)
        let latest = Dictionary(uniqueKeysWithValues: r.metrics.map { ($0.key, $0) })
        #expect(latest["loss"]?.value == 5 && latest["loss"]?.step == 2)
        #expect(latest["nan"]?.value.isNaN == true)
        #expect(latest["inf"]?.value == .greatestFiniteMagnitude)
        #expect(latest["ninf"]?.value == -.greatestFiniteMagnitude)
        // History keeps every distinct point, ordered by (timestamp, step, value); exact duplicates collapse.
        let history = try await s.metricHistory(runID: id, key: "loss", offset: 0, limit: nil)
        #expect(history.items.map(\.value) == [4, 5, 9])
        let page1 = try await s.metricHistory(runID: id, key: "loss", offset: 0, limit: 2)
        #expect(page1.items.map(\.value) == [4, 5])
        let page2 = try await s.metricHistory(runID: id, key: "loss", offset: try #require(page1.nextOffset), limit: 2)
        #expect(page2.items.map(\.value) == [9] && page2.nextOffset == nil)
        #expect(try await s.metricHistory(runID: id, key: "nope", offset: 0, limit: nil).items.isEmpty)
        #expect(try await s.metricHistory(runID: "nope", key: "loss", offset: 0, limit: nil).items.isEmpty)
        // Long values are truncated the way the reference does by default.
        try await s.logBatch(
            runID: id, metrics: [], params: [KeyValue("long", String(repeating: "x", count: 7000))],
            tags: [KeyValue("longtag", String(repeating: "y", count: 9000))], conflictStyle: .batch)
        r = try await s.getRun(id: id)
        #expect(r.params.first { $0.key == "long" }?.value.count == 6000)
        #expect(r.tags.first { $0.key == "longtag" }?.value.count == 8000)
    }

    /// MLflow's input rules hold for every caller of the store, not only the HTTP routes: a batch or
    /// an input list that breaks one is refused whole (nothing of it is written), with the
    /// reference's message; values over the limits are truncated as MLflow stores them.
    /// A history drawn as a chart: exact when few points are in view, buckets otherwise that keep
    /// the extremes; every axis; NaN and ±inf counted, not drawn; any bound a client sends is safe.
    public func metricSeries() async throws {
        let s = try await make()
        let id = try await run(s, in: "0")
        // 10,000 points: value = step mod 100, one spike at step 5,000, timestamps 1,000,000 + 10·step.
        for chunk in stride(from: 0, to: 10_000, by: 1_000) {
            let metrics: [Metric] = (chunk..<(chunk + 1_000)).map { (i: Int) -> Metric in
                let value: Double = i == 5_000 ? 1_000 : Double(i % 100)
                return Metric(key: "loss", value: value, timestamp: 1_000_000 + Int64(i) * 10, step: Int64(i))
            }
            try await s.logBatch(runID: id, metrics: metrics, params: [], tags: [], conflictStyle: .batch)
        }
        try await s.logBatch(
            runID: id, metrics: [Metric(key: "loss", value: .nan, timestamp: 1_000_000, step: 3), Metric(key: "loss", value: .infinity, timestamp: 1_000_000, step: 4)],
            params: [], tags: [], conflictStyle: .batch)

        let whole = try await s.metricSeries(runID: id, key: "loss", axis: .step, from: nil, to: nil, maxPoints: 100)
        #expect(!whole.exact && whole.total == 10_000 && whole.nonFinite == 2 /* NaN, and inf (stored as the largest double) */ && whole.points.count <= 100 && whole.points.count >= 90)
        #expect(whole.points.reduce(0) { $0 + $1.count } == 10_000, "every finite point is in one bucket")
        #expect(whole.points.map(\.max).max() == 1_000 && whole.points.map(\.min).min() == 0, "the extremes survive")
        #expect(whole.points.contains { $0.y == 1_000 }, "the line reaches the spike")
        #expect(whole.points.map(\.x) == whole.points.map(\.x).sorted() && whole.extent == 0...9_999)
        #expect(whole.points.allSatisfy { $0.min <= $0.mean && $0.mean <= $0.max })

        let zoom = try await s.metricSeries(runID: id, key: "loss", axis: .step, from: 4_990, to: 5_010, maxPoints: 100)
        #expect(zoom.exact && zoom.total == 21 && zoom.points.map(\.x) == (4_990...5_010).map(Double.init))
        #expect(zoom.points.first { $0.x == 5_000 }?.y == 1_000 && zoom.points.first?.y == 90)

        let wall = try await s.metricSeries(runID: id, key: "loss", axis: .time, from: 1_000_000, to: 1_000_100, maxPoints: 100)
        #expect(wall.exact && wall.points.first?.x == 1_000_000 && wall.points.count == 11 && wall.origin == 1_000_000)
        let relative = try await s.metricSeries(runID: id, key: "loss", axis: .relative, from: 0, to: 30, maxPoints: 100)
        #expect(relative.points.map(\.x) == [0, 10, 20, 30] && relative.extent == 0...99_990)

        // Bounds from a client: reversed, huge, beyond the data: answers, never traps.
        for (from, to) in [(1e300, -1e300), (-1e300, 1e300), (9.3e18, 9.4e18), (-9.3e18, -9.2e18), (5.5, 5.4)] as [(Double, Double)] {
            let r = try await s.metricSeries(runID: id, key: "loss", axis: .step, from: from, to: to, maxPoints: 100)
            #expect(r.points.count <= 100, "\(from)...\(to)")
        }
        #expect(try await s.metricSeries(runID: id, key: "loss", axis: .step, from: 5.5, to: 5.4, maxPoints: 100).points.isEmpty)
        #expect(try await s.metricSeries(runID: id, key: "absent", axis: .step, from: nil, to: nil, maxPoints: 100) == MetricSeries(points: [], total: 0, exact: true, nonFinite: 0, origin: 0, extent: nil))

        // Many points at one step make one bucket; extreme values do not overflow the mean.
        let one = try await run(s, in: "0")
        let huge: [Metric] = (0..<40).map { (i: Int) -> Metric in
            Metric(key: "m", value: i % 2 == 0 ? 1e308 : -1e308, timestamp: Int64(i), step: 7)
        }
        try await s.logBatch(
            runID: one, metrics: huge + [Metric(key: "m", value: 2, timestamp: 99, step: 7)],
            params: [], tags: [], conflictStyle: .batch)
        let stacked = try await s.metricSeries(runID: one, key: "m", axis: .step, from: nil, to: nil, maxPoints: 16)
        #expect(!stacked.exact && stacked.points.count == 1 && stacked.points[0].count == 41)
        #expect(stacked.points[0].min == -1e308 && stacked.points[0].max == 1e308 && stacked.points[0].mean == 2)
    }

    public func inputRules() async throws {
        let s = try await make()
        let id = try await run(s, in: "0")
        let ok = Metric(key: "m", value: 1, timestamp: 1, step: 0)
        func refused(_ body: () async throws -> Void) async -> String? {
            let m = await Self.message(of: body)
            #expect(await Self.code(of: body) == .invalidParameterValue)
            return m
        }
        // Sizes, keys, timestamps, duplicates and server-owned tags, each with the reference's words.
        let tooMany = Array(repeating: ok, count: Validation.maxBatchMetrics + 1)
        #expect(await refused { try await s.logBatch(runID: id, metrics: tooMany, params: [], tags: [], conflictStyle: .batch) }?
            .hasPrefix("A batch logging request can contain at most 1000 metrics. Got 1001 metrics.") == true)
        let badKey = Metric(key: "a/../b", value: 1, timestamp: 1, step: 0)
        #expect(await refused { try await s.logBatch(runID: id, metrics: [ok, badKey], params: [], tags: [], conflictStyle: .batch) } != nil)
        let early = Metric(key: "m", value: 2, timestamp: -5, step: 0)
        #expect(await refused { try await s.logBatch(runID: id, metrics: [early], params: [], tags: [], conflictStyle: .single) }?
            .contains("Timestamp must be a nonnegative long") == true)
        #expect(await refused {
            try await s.logBatch(runID: id, metrics: [ok], params: [KeyValue("p", "1"), KeyValue("p", "2")], tags: [], conflictStyle: .batch)
        }?.hasPrefix("Duplicate parameter keys have been submitted: ['p']") == true)
        let longKey = String(repeating: "k", count: Validation.maxEntityKeyLength + 1)
        #expect(await refused { try await s.logBatch(runID: id, metrics: [], params: [], tags: [KeyValue(longKey, "v")], conflictStyle: .batch) } != nil)
        // All or nothing: the good metric sent beside each bad item was not written.
        let after = try await s.getRun(id: id)
        #expect(after.metrics.isEmpty && after.params.isEmpty)
        // Long values are kept, cut at MLflow's limits.
        let long = String(repeating: "x", count: Validation.maxParamValueLength + 10)
        try await s.logBatch(runID: id, metrics: [ok], params: [KeyValue("long", long)], tags: [KeyValue("t", long + long)], conflictStyle: .batch)
        let data = try await s.getRun(id: id)
        #expect(data.params.first { $0.key == "long" }?.value.count == Validation.maxParamValueLength)
        #expect(data.tags.first { $0.key == "t" }?.value.count == Validation.maxTagValueLength)

        // Datasets: the first missing field is named; limits hold; nothing is written on refusal.
        let ds = Dataset(name: "d", digest: "abc", sourceType: "local", source: "/data", schema: nil, profile: nil)
        var noDigest = ds
        noDigest.digest = ""
        #expect(await Self.message {
            try await s.logInputs(runID: id, datasets: [DatasetInput(tags: [], dataset: ds), DatasetInput(tags: [], dataset: noDigest)], modelIDs: [])
        } == "Missing value for required parameter 'datasets[1].dataset.digest'. See the API docs for more information about request parameters.")
        var longName = ds
        longName.name = String(repeating: "n", count: Validation.maxDatasetNameLength + 1)
        #expect(await refused { try await s.logInputs(runID: id, datasets: [DatasetInput(tags: [], dataset: longName)], modelIDs: []) }
            == "Dataset name exceeds the maximum length of \(Validation.maxDatasetNameLength) characters")
        let longTag = KeyValue("mlflow.data.context", String(repeating: "v", count: Validation.maxInputTagValueLength + 1))
        #expect(await refused { try await s.logInputs(runID: id, datasets: [DatasetInput(tags: [longTag], dataset: ds)], modelIDs: []) } != nil)
        #expect(try await s.getRun(id: id).datasetInputs.isEmpty)
    }

    public func runSearch() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "search", artifactLocation: nil, tags: [])
        var ids: [String] = []
        for i in 0..<10 {
            let id = try await run(s, in: exp, name: "run-\(i)", start: Int64(1000 + i))
            ids.append(id)
            var metrics = [Metric(key: "acc", value: Double(i) / 10, timestamp: 1)]
            if i == 3 { metrics = [Metric(key: "acc", value: .nan, timestamp: 1)] }
            if i == 4 { metrics = [] }
            try await s.logBatch(
                runID: id, metrics: metrics, params: [KeyValue("parity", i % 2 == 0 ? "Even" : "odd")],
                tags: i < 5 ? [KeyValue("group", "g\(i)")] : [], conflictStyle: .batch)
        }
        try await s.logInputs(
            runID: ids[0],
            datasets: [DatasetInput(tags: [KeyValue("mlflow.data.context", "training")], dataset: Dataset(name: "iris", digest: "abc", sourceType: "code", source: "{}", schema: nil, profile: nil))],
            modelIDs: [])
        func search(_ filter: String?, _ order: [String] = [], max: Int = 100, token: String? = nil, view: ViewType = .activeOnly) async throws -> Page<Run> {
            try await s.searchRuns(RunSearchQuery(experimentIDs: [exp], filter: filter, orderBy: order, viewType: view, maxResults: max, pageToken: token))
        }
        func names(_ filter: String?, _ order: [String] = []) async throws -> [String] {
            try await search(filter, order).items.map(\.info.runName)
        }
        // Default order: start_time DESC.
        #expect(try await names(nil).first == "run-9")
        #expect(try await names("metrics.acc > 0.7") == ["run-9", "run-8"])
        #expect(Set(try await names("metrics.acc != 0.5")) == Set(["run-0", "run-1", "run-2", "run-3", "run-6", "run-7", "run-8", "run-9"]))
        #expect(try await names("metrics.acc >= 0.2 and metrics.acc <= 0.3") == ["run-2"])
        #expect(try await names("params.parity = 'odd'").count == 5)
        #expect(try await names("params.parity LIKE 'e%'").isEmpty)  // LIKE is case-sensitive
        #expect(try await names("params.parity ILIKE 'e%'").count == 5)
        #expect(try await names("tags.group IS NULL").count == 5)
        #expect(try await names("tags.group IS NOT NULL").count == 5)
        #expect(try await names("tags.group != 'g1'").count == 4)  // runs without the tag never match
        #expect(try await names("attributes.run_name = 'run-3'") == ["run-3"])
        #expect(try await names("run_name LIKE 'run-1%'") == ["run-1"])
        #expect(try await names("attributes.run_id IN ('\(ids[1])', '\(ids[2])')") == ["run-2", "run-1"])
        #expect(try await names("attributes.start_time >= 1008") == ["run-9", "run-8"])
        #expect(try await names("attributes.status = 'RUNNING'").count == 10)
        #expect(try await names("datasets.name = 'iris'") == ["run-0"])
        #expect(try await names("dataset.context = 'training'") == ["run-0"])
        // Order by a metric: real values, then NaN, then missing, in both directions.
        let asc = try await names(nil, ["metrics.acc ASC"])
        #expect(Array(asc.suffix(2)) == ["run-3", "run-4"])
        #expect(asc.first == "run-0")
        let desc = try await names(nil, ["metrics.acc DESC"])
        #expect(desc.first == "run-9")
        #expect(Array(desc.suffix(2)) == ["run-3", "run-4"])
        #expect(try await names(nil, ["params.parity DESC", "attributes.start_time ASC"]).prefix(2) == ["run-1", "run-3"])
        // Paging chains tokens and ends without one.
        var seen: [String] = []
        var token: String? = nil
        repeat {
            let page = try await search(nil, max: 4, token: token)
            seen += page.items.map(\.info.runID)
            token = page.nextOffset.map { PageToken.encode(offset: $0) }
        } while token != nil
        #expect(seen.count == 10 && Set(seen).count == 10)
        // Deleted runs are hidden unless asked for.
        try await s.deleteRun(id: ids[0])
        #expect(try await search(nil).items.count == 9)
        #expect(try await search(nil, view: .deletedOnly).items.map(\.info.runID) == [ids[0]])
        #expect(try await search(nil, view: .all).items.count == 10)
        // Search results carry data and inputs.
        let full = try await search("attributes.run_name = 'run-0'", view: .all).items[0]
        #expect(full.params == [KeyValue("parity", "Even")])
        #expect(full.datasetInputs.first?.dataset.name == "iris")
    }

    public func inputsAndOutputs() async throws {
        let s = try await make()
        let id = try await run(s, in: "0")
        let ds = Dataset(name: "d", digest: "1234", sourceType: "code", source: "{}", schema: "{\"a\":1}", profile: nil)
        try await s.logInputs(runID: id, datasets: [DatasetInput(tags: [KeyValue("mlflow.data.context", "train")], dataset: ds)], modelIDs: ["m-1"])
        try await s.logInputs(runID: id, datasets: [DatasetInput(tags: [KeyValue("mlflow.data.context", "train")], dataset: ds)], modelIDs: ["m-1"])
        try await s.logOutputs(runID: id, outputs: [ModelOutput(modelID: "m-2", step: 3)])
        let r = try await s.getRun(id: id)
        #expect(try await s.searchDatasets(experimentIDs: ["0"]) == [DatasetSummary(experimentID: "0", name: "d", digest: "1234", context: "train")])
        #expect(try await s.searchDatasets(experimentIDs: []).isEmpty)
        #expect(r.datasetInputs.count == 1)
        #expect(r.datasetInputs[0].dataset == ds)
        #expect(r.datasetInputs[0].tags == [KeyValue("mlflow.data.context", "train")])
        #expect(r.modelInputs == ["m-1"])
        #expect(r.modelOutputs == [ModelOutput(modelID: "m-2", step: 3)])
    }

    public func loggedModels() async throws {
        let s = try await make()
        let exp = try await s.createExperiment(name: "models", artifactLocation: nil, tags: [])
        let runID = try await run(s, in: exp)
        let m = try await s.createLoggedModel(
            CreateLoggedModelInput(experimentID: exp, name: "model", modelType: nil, sourceRunID: runID, params: [KeyValue("C", "1.0")], tags: [KeyValue("t", "1")]))
        #expect(m.modelID.hasPrefix("m-") && m.modelID.count == 34)
        #expect(m.status == .pending)
        #expect(m.artifactURI.hasSuffix("/\(exp)/models/\(m.modelID)/artifacts"))
        #expect(await Self.code {
            _ = try await s.createLoggedModel(CreateLoggedModelInput(experimentID: exp, name: "a/b", modelType: nil, sourceRunID: nil, params: [], tags: []))
        } == .invalidParameterValue)
        let ready = try await s.finalizeLoggedModel(id: m.modelID, status: .ready)
        #expect(ready.status == .ready)
        try await s.logBatch(
            runID: runID, metrics: [Metric(key: "score", value: 0.9, timestamp: 1, modelID: m.modelID, datasetName: "ds", datasetDigest: "dd")],
            params: [], tags: [], conflictStyle: .batch)
        try await s.setLoggedModelTags(id: m.modelID, tags: [KeyValue("t", "2"), KeyValue("u", "3")])
        try await s.deleteLoggedModelTag(id: m.modelID, key: "u")
        #expect(await Self.code { try await s.deleteLoggedModelTag(id: m.modelID, key: "u") } == .resourceDoesNotExist)
        try await s.logLoggedModelParams(id: m.modelID, params: [KeyValue("D", "2")])
        let got = try await s.getLoggedModel(id: m.modelID, allowDeleted: false)
        #expect(got.tags == [KeyValue("t", "2")])
        #expect(got.params == [KeyValue("C", "1.0"), KeyValue("D", "2")])
        #expect(got.metrics.first?.value == 0.9 && got.metrics.first?.runID == runID && got.metrics.first?.datasetName == "ds")
        let other = try await s.createLoggedModel(
            CreateLoggedModelInput(experimentID: exp, name: "other", modelType: nil, sourceRunID: nil, params: [], tags: []))
        func found(_ filter: String) async throws -> [String] {
            try await s.searchLoggedModels(
                LoggedModelSearchQuery(experimentIDs: [exp], filter: filter, orderBy: [], maxResults: nil, pageToken: nil)
            ).items.map(\.modelID)
        }
        #expect(try await found("name = 'model'") == [m.modelID])
        #expect(try await found("metrics.score > 0.5") == [m.modelID])
        #expect(try await found("params.C = '1.0'") == [m.modelID])
        #expect(Set(try await found("")) == Set([m.modelID, other.modelID]))
        try await s.deleteLoggedModel(id: other.modelID)
        #expect(await Self.code { _ = try await s.getLoggedModel(id: other.modelID, allowDeleted: false) } == .resourceDoesNotExist)
        #expect(try await s.getLoggedModel(id: other.modelID, allowDeleted: true).lifecycleStage == .deleted)
        #expect(try await found("") == [m.modelID])
    }

    /// Many concurrent writers: every acknowledged write is there afterwards.
    public func concurrentWrites() async throws {
        let s = try await make()
        let id = try await run(s, in: "0")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    try await s.logBatch(
                        runID: id, metrics: [Metric(key: "m", value: Double(i), timestamp: Int64(i), step: Int64(i))],
                        params: [KeyValue("p\(i)", "\(i)")], tags: [], conflictStyle: .single)
                }
            }
            // A failing writer among them must not undo the others.
            group.addTask {
                _ = try? await s.logBatch(runID: "missing-run", metrics: [Metric(key: "m", value: 1, timestamp: 1)], params: [], tags: [], conflictStyle: .single)
            }
            try await group.waitForAll()
        }
        let history = try await s.metricHistory(runID: id, key: "m", offset: 0, limit: nil)
        #expect(history.items.count == 200)
        #expect(try await s.getRun(id: id).params.count == 200)
        #expect(try await s.getRun(id: id).metrics.first?.value == 199)
    }

    /// `log-model` appends to a list kept in a tag: concurrent appends each keep their entry (the
    /// read and the write of the tag are one transaction), and the list stays valid JSON.
    public func concurrentLoggedModelHistory() async throws {
        let s = try await make()
        let id = try await run(s, in: "0")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                group.addTask {
                    try await s.appendLoggedModelHistory(
                        runID: id, model: JSONObject([("artifact_path", .string("model-\(i)")), ("run_id", .string(id))]))
                }
            }
            try await group.waitForAll()
        }
        let tag = try #require(try await s.getRun(id: id).tags.first { $0.key == "mlflow.log-model.history" })
        guard case .array(let items)? = try? JSONValue.parse(tag.value) else {
            Issue.record("history is not a JSON list: \(tag.value.prefix(200))")
            return
        }
        #expect(Set(items.compactMap { $0["artifact_path"]?.stringValue }) == Set((0..<40).map { "model-\($0)" }))
        #expect(await Self.code(of: { try await s.appendLoggedModelHistory(runID: "missing-run", model: JSONObject()) })?.rawValue == "RESOURCE_DOES_NOT_EXIST")
    }

    /// Artifact digests: one record per location (a second upload replaces it), a run's records are
    /// exactly those under its root (not a sibling whose name merely starts the same, and no
    /// character acts as a wildcard), and forgetting a folder drops everything under it.
    public func artifactDigests() async throws {
        let s = try await make()
        let root = "mlflow-artifacts:/1/run_1/artifacts"
        func d(_ path: String, _ sha: String?, size: Int64 = 3, method: String = "put") -> ArtifactDigest {
            ArtifactDigest(location: path, size: size, sha256: sha, recordedTime: 1000, method: method)
        }
        let a = String(repeating: "a", count: 64), b = String(repeating: "b", count: 64)
        for digest in [
            d(root + "/model/MLmodel", a), d(root + "/100%_sure.txt", a), d(root + "/caf\u{e9}/\u{1F600}.bin", b),
            d(root + "/big.bin", nil, size: 12_000_000, method: "multipart"),
            d("mlflow-artifacts:/1/run_10/artifacts/other.txt", a), d("mlflow-artifacts:/1/runX1/artifacts/x.txt", a),
            d("mlflow-artifacts:/1/run_1/artifactsX/y.txt", a), d(root, a),
        ] {
            try await s.recordArtifactDigest(digest)
        }
        try await s.recordArtifactDigest(d(root + "/model/MLmodel", b, size: 9))  // uploaded again
        let under = try await s.artifactDigests(under: root)
        #expect(under.map(\.location) == [
            root + "/100%_sure.txt", root + "/big.bin", root + "/caf\u{e9}/\u{1F600}.bin", root + "/model/MLmodel",
        ])
        #expect(under.first { $0.location.hasSuffix("MLmodel") } == d(root + "/model/MLmodel", b, size: 9))
        #expect(under.first { $0.location.hasSuffix("big.bin") }?.sha256 == nil)
        // A multipart record gets its hash once read back, only while it is still the same record.
        #expect(!(try await s.completeArtifactDigest(location: root + "/big.bin", recordedTime: 999, size: 12_000_000, sha256: a, method: "multipart-readback")))
        #expect(!(try await s.completeArtifactDigest(location: root + "/big.bin", recordedTime: 1000, size: 11, sha256: a, method: "multipart-readback")))
        #expect(!(try await s.completeArtifactDigest(location: root + "/model/MLmodel", recordedTime: 1000, size: 9, sha256: a, method: "multipart-readback")))
        #expect(try await s.completeArtifactDigest(location: root + "/big.bin", recordedTime: 1000, size: 12_000_000, sha256: a, method: "multipart-readback"))
        let completed = try await s.artifactDigests(under: root).first { $0.location.hasSuffix("big.bin") }
        #expect(completed == d(root + "/big.bin", a, size: 12_000_000, method: "multipart-readback"))
        try await s.recordArtifactDigest(d(root + "/big.bin", nil, size: 12_000_000, method: "multipart"))
        #expect(try await s.artifactDigests(under: root + "/") == under)
        #expect(try await s.artifactDigests(under: "mlflow-artifacts:/1/run_%").isEmpty)
        try await s.forgetArtifactDigests(at: root + "/model")
        #expect(try await s.artifactDigests(under: root).count == 3)
        try await s.forgetArtifactDigests(at: root + "/100%_sure.txt")
        #expect(try await s.artifactDigests(under: root).map(\.location) == [root + "/big.bin", root + "/caf\u{e9}/\u{1F600}.bin"])
        #expect(try await s.artifactDigests(under: "mlflow-artifacts:/1/run_10/artifacts").count == 1)
    }
}
