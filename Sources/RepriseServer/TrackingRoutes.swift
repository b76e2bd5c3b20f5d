import Hummingbird
import RepriseCore

extension RepriseAPI {
    // MARK: - Experiments

    func registerExperiments() {
        let store = self.store
        route(.post, "/api/2.0/mlflow/experiments/create", access: .authenticated) { [self] call in
            let p = try await call.params()
            let name = try p.requiredString("name")
            let location = try p.string("artifact_location")
            let tags = try p.keyValues("tags")
            let id = try await store.createExperiment(name: name, artifactLocation: location, tags: tags)
            try await self.grantCreator(.experiment, id)
            return Self.json(["experiment_id": .string(id)])
        }
        route(.get, "/api/2.0/mlflow/experiments/get", access: .experiment(.read, .field("experiment_id"))) { call in
            let p = try await call.params()
            let e = try await store.getExperiment(id: try p.requiredString("experiment_id"))
            return Self.json(["experiment": e.json])
        }
        route(.get, "/api/2.0/mlflow/experiments/get-by-name", access: .experiment(.read, .experimentName("experiment_name"))) { call in
            let p = try await call.params()
            let e = try await store.getExperiment(name: try p.requiredString("experiment_name"))
            return Self.json(["experiment": e.json])
        }
        let search: Handler = { [self] call in
            let p = try await call.params()
            let viewType = try p.string("view_type").map { s -> ViewType in
                guard let v = ViewType(wire: s) else { throw RepriseError.invalid("Invalid view_type '\(s)'.") }
                return v
            } ?? .activeOnly
            var query = try ExperimentSearchQuery(
                filter: try p.string("filter"), orderBy: try p.stringList("order_by"), viewType: viewType,
                maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
            // With authentication on, only readable experiments, refilled to max_results.
            let canRead = try await self.callerPredicate(.read, .experiment)
            let filtered = try await self.readable(
                offset: query.offset, maxResults: query.maxResults,
                fetch: { offset in
                    query.offset = offset
                    return try await store.searchExperiments(query)
                },
                readable: { canRead($0.experimentID) })
            var o = JSONObject()
            if !filtered.items.isEmpty { o["experiments"] = .array(filtered.items.map(\.json)) }
            if let next = filtered.next { o["next_page_token"] = .string(PageToken.encode(offset: next)) }
            return Self.json(.object(o))
        }
        route(.post, "/api/2.0/mlflow/experiments/search", access: .authenticated, search)
        route(.get, "/api/2.0/mlflow/experiments/search", access: .authenticated, search)
        route(.post, "/api/2.0/mlflow/experiments/delete", access: .experiment(.delete, .field("experiment_id"))) { call in
            try await store.deleteExperiment(id: try await call.params().requiredString("experiment_id"))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/experiments/restore", access: .experiment(.delete, .field("experiment_id"))) { call in
            try await store.restoreExperiment(id: try await call.params().requiredString("experiment_id"))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/experiments/update", access: .experiment(.update, .field("experiment_id"))) { call in
            let p = try await call.params()
            let id = try p.requiredString("experiment_id")
            let newName = try p.requiredString("new_name")
            try await store.renameExperiment(id: id, newName: newName)
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/experiments/set-experiment-tag", access: .experiment(.update, .field("experiment_id"))) { call in
            let p = try await call.params()
            let id = try p.requiredString("experiment_id")
            let key = try p.requiredString("key")
            try await store.setExperimentTag(id: id, tag: KeyValue(key, try p.string("value") ?? ""))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/experiments/delete-experiment-tag", access: .experiment(.update, .field("experiment_id"))) { call in
            let p = try await call.params()
            try await store.deleteExperimentTag(id: try p.requiredString("experiment_id"), key: try p.requiredString("key"))
            return Self.json(Self.empty)
        }
    }

    // MARK: - Runs

    /// Reads one metric object with the reference's rules and messages.
    /// - Parameter index: the position in a log-batch request, which error messages name (`metrics[3].timestamp`).
    static func metric(_ o: JSONObject, index: Int?, validatedKeys: inout Set<String>) throws -> Metric {
        let p = Params(source: .json(o))
        func field(_ name: String) -> String { index.map { "metrics[\($0)].\(name)" } ?? name }
        guard let keyValue = try p.raw("key") else { throw RepriseError.missing(field("key")) }
        guard case .string(let key) = keyValue, !key.isEmpty else {
            if case .string = keyValue { throw RepriseError.missing(field("key")) }
            throw RepriseError.wrongType(field("key"), keyValue, "Expected a string.")
        }
        // Numbers take the fast path; anything else goes through the general readers and their messages.
        guard let rawValue = try p.raw("value") else { throw RepriseError.missing(field("value")) }
        let value: Double
        switch rawValue {
        case .double(let d): value = d
        case .int(let i): value = Double(i)
        default: value = try Params.double(rawValue, field: field("value"))
        }
        guard let rawTimestamp = try p.raw("timestamp") else { throw RepriseError.missing(field("timestamp")) }
        let timestamp: Int64
        if case .int(let t) = rawTimestamp { timestamp = t } else { timestamp = try Params.int64(rawTimestamp, field: field("timestamp")) }
        var step: Int64 = 0
        switch try p.raw("step") {
        case nil: break
        case .int(let i)?: step = i
        case let other?: step = try Params.int64(other, field: field("step"))
        }
        let metric = Metric(
            key: key, value: value, timestamp: timestamp, step: step, modelID: try p.string("model_id"),
            datasetName: try p.string("dataset_name"), datasetDigest: try p.string("dataset_digest"))
        // The rule (RunBatch's) is applied as each item is read, so an item's error comes before a
        // later item's decoding error, in the reference's order.
        try RunBatch.check(metric, checkedKeys: &validatedKeys)
        return metric
    }

    func registerRuns() {
        let store = self.store
        route(.post, "/api/2.0/mlflow/runs/create", access: .experiment(.update, .fieldOrDefault("experiment_id", "0"))) { call in
            let p = try await call.params()
            let run = try await store.createRun(
                CreateRunInput(
                    experimentID: try p.string("experiment_id") ?? "0", userID: try p.string("user_id") ?? "",
                    runName: try p.string("run_name"), startTime: try p.int64("start_time") ?? 0,
                    tags: try p.keyValues("tags")))
            return Self.json(wrapping: "run", run.writeJSON)
        }
        route(.post, "/api/2.0/mlflow/runs/update", access: .experiment(.update, .run)) { call in
            let p = try await call.params()
            let id = try p.runID()
            let status = try p.string("status").map { s -> RunStatus in
                guard let st = RunStatus(wire: s) else { throw RepriseError.invalid("Invalid run status '\(s)'.") }
                return st
            }
            let info = try await store.updateRun(
                id: id, status: status, endTime: try p.int64("end_time"), runName: try p.string("run_name"))
            return Self.json(wrapping: "run_info", info.writeJSON)
        }
        route(.post, "/api/2.0/mlflow/runs/delete", access: .experiment(.delete, .run)) { call in
            try await store.deleteRun(id: try await call.params().runID())
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/restore", access: .experiment(.delete, .run)) { call in
            try await store.restoreRun(id: try await call.params().runID())
            return Self.json(Self.empty)
        }
        route(.get, "/api/2.0/mlflow/runs/get", access: .experiment(.read, .run)) { call in
            let run = try await store.getRun(id: try await call.params().runID())
            return Self.json(wrapping: "run", run.writeJSON)
        }
        route(.post, "/api/2.0/mlflow/runs/log-metric", access: .experiment(.update, .run)) { [self] call in
            let body = try await call.jsonBody()
            let p = Params(source: .json(body))
            let runID = try p.runID()
            var validated = Set<String>()
            let m = try Self.metric(body, index: nil, validatedKeys: &validated)
            if let model = m.modelID { try await requireCaller(.update, loggedModels: [model]) }
            try await store.logBatch(runID: runID, try RunBatch(metrics: [m], conflictStyle: .single))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/log-parameter", access: .experiment(.update, .run)) { call in
            let p = try await call.params()
            let runID = try p.runID()
            let key = try p.requiredString("key")
            guard let value = try p.string("value") else { throw RepriseError.missing("value") }
            try await store.logBatch(runID: runID, try RunBatch(params: [KeyValue(key, value)], conflictStyle: .single))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/set-tag", access: .experiment(.update, .run)) { call in
            let p = try await call.params()
            let runID = try p.runID()
            let tag = KeyValue(try p.requiredString("key"), try p.string("value") ?? "")
            try await store.logBatch(runID: runID, try RunBatch(tags: [tag], conflictStyle: .single))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/delete-tag", access: .experiment(.update, .run)) { call in
            let p = try await call.params()
            try await store.deleteTag(runID: try p.runID(), key: try p.requiredString("key"))
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/log-batch", access: .experiment(.update, .run)) { [self] call in
            let body = try await call.jsonBody()
            let p = Params(source: .json(body))
            let runID = try p.runID()
            try Validation.validateRunID(runID)
            let metricItems = try p.array("metrics")
            let paramItems = try p.array("params")
            let tagItems = try p.array("tags")
            try RunBatch.checkSizes(metrics: metricItems.count, params: paramItems.count, tags: tagItems.count)
            var validatedKeys = Set<String>()
            var metrics: [Metric] = []
            metrics.reserveCapacity(metricItems.count)
            for (i, item) in metricItems.enumerated() {
                guard case .object(let o) = item else {
                    throw RepriseError.wrongType("metrics", item, "Expected a list of metric objects.")
                }
                metrics.append(try Self.metric(o, index: i, validatedKeys: &validatedKeys))
            }
            let batch = try RunBatch(
                metrics: metrics, params: try p.keyValues("params", valueRequired: false), tags: try p.keyValues("tags"), conflictStyle: .batch)
            try await requireCaller(.update, loggedModels: metrics.compactMap(\.modelID))
            try await store.logBatch(runID: runID, batch)
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/log-inputs", access: .experiment(.update, .run)) { [self] call in
            let p = try await call.params()
            let runID = try p.runID()
            try Validation.validateRunID(runID)
            let datasets = try p.array("datasets").enumerated().map { (i, item) -> DatasetInput in
                guard case .object(let o) = item, case .object(let d)? = o["dataset"] else {
                    throw RepriseError.missing("datasets[\(i)].dataset")
                }
                let dp = Params(source: .json(d))
                return DatasetInput(
                    tags: try Params(source: .json(o)).keyValues("tags"),
                    dataset: Dataset(
                        name: try dp.string("name") ?? "", digest: try dp.string("digest") ?? "", sourceType: try dp.string("source_type") ?? "",
                        source: try dp.string("source") ?? "", schema: try dp.string("schema"), profile: try dp.string("profile")))
            }
            let models = try p.array("models").map { item -> String in
                guard case .object(let o) = item else { throw RepriseError.missing("models.model_id") }
                return try Params(source: .json(o)).string("model_id") ?? ""
            }
            let inputs = try RunInputs(datasets: datasets, modelIDs: models)
            try await requireCaller(.update, loggedModels: models)
            try await store.logInputs(runID: runID, inputs)
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/outputs", access: .experiment(.update, .run)) { [self] call in
            let p = try await call.params()
            let runID = try p.runID()
            let outputs = try p.array("models").enumerated().map { (i, item) -> ModelOutput in
                guard case .object(let o) = item else { throw RepriseError.missing("models[\(i)].model_id") }
                let mp = Params(source: .json(o))
                guard let id = try mp.string("model_id"), !id.isEmpty else { throw RepriseError.missing("models[\(i)].model_id") }
                guard let step = try mp.int64("step") else { throw RepriseError.missing("models[\(i)].step") }
                return ModelOutput(modelID: id, step: step)
            }
            if outputs.isEmpty { throw RepriseError.missing("models") }
            try await requireCaller(.update, loggedModels: outputs.map(\.modelID))
            try await store.logOutputs(runID: runID, outputs: outputs)
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/log-model", access: .experiment(.update, .run)) { call in
            let p = try await call.params()
            let runID = try p.runID()
            let modelJSON = try p.requiredString("model_json")
            guard case .object(let model)? = try? JSONValue.parse(modelJSON) else {
                throw RepriseError.invalid("Malformed model info. \n \(modelJSON) \n is not a valid JSON.")
            }
            for key in ["artifact_path", "flavors", "utc_time_created", "run_id"] where model[key] == nil {
                throw RepriseError.invalid("Model json is missing mandatory fields: ['\(key)']")
            }
            try await store.appendLoggedModelHistory(runID: runID, model: model)
            return Self.json(Self.empty)
        }
        route(.post, "/api/2.0/mlflow/runs/search", access: .authenticated) { [self] call in
            let p = try await call.params()
            let viewType = try p.string("run_view_type").map { s -> ViewType in
                guard let v = ViewType(wire: s) else { throw RepriseError.invalid("Invalid run_view_type '\(s)'.") }
                return v
            } ?? .activeOnly
            // With authentication on, experiments the caller may not read are left out (MLflow's
            // rule); none left is an empty answer.
            let requested = try p.stringList("experiment_ids")
            let canRead = try await self.callerPredicate(.read, .experiment)
            let experimentIDs = requested.filter(canRead)
            if experimentIDs.isEmpty && !requested.isEmpty { return Self.json(Self.empty) }
            let query = try RunSearchQuery(
                experimentIDs: experimentIDs, filter: try p.string("filter"),
                orderBy: try p.stringList("order_by"), viewType: viewType,
                maxResults: try p.int64("max_results").map { Int(clamping: $0) }, pageToken: try p.string("page_token"))
            let page = try await store.searchRuns(query)
            var out: [UInt8] = []
            out.reserveCapacity(64 + page.items.count * 2048)
            out.append(UInt8(ascii: "{"))
            if !page.items.isEmpty {
                JSONValue.writeLiteral(#""runs":"#, to: &out)
                JSONValue.writeArray(page.items, to: &out) { run, o in run.writeJSON(to: &o) }
            }
            if let next = page.nextOffset {
                if !page.items.isEmpty { out.append(UInt8(ascii: ",")) }
                JSONValue.writeLiteral(#""next_page_token":"#, to: &out)
                JSONValue.writeString(PageToken.encode(offset: next), to: &out)
            }
            out.append(UInt8(ascii: "}"))
            return Self.json(encoded: out)
        }
        route(.get, "/api/2.0/mlflow/metrics/get-history", access: .experiment(.read, .run)) { call in
            let p = try await call.params()
            let runID = try p.runID()
            let key = try p.requiredString("metric_key")
            let max = try p.int64("max_results")
            if let max, max <= 0 {
                throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied. It must be a positive integer")
            }
            let offset = try PageToken.decode(try p.string("page_token"))
            return Self.metricsResponse(
                try await store.metricHistoryEncoded(runID: runID, key: key, offset: offset, limit: max.map { Int(clamping: $0) }))
        }
        route(.get, "/api/2.0/mlflow/metrics/get-history-bulk-interval", access: .experiments(.read, .runIDs("run_ids"))) { call in
            let p = try await call.params()
            let runIDs = try p.stringList("run_ids")
            if runIDs.isEmpty { throw RepriseError.missing("run_ids") }
            if runIDs.count > 100 {
                throw RepriseError.invalid("GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received \(runIDs.count) run_ids.")
            }
            let key = try p.requiredString("metric_key")
            let start = try p.int64("start_step")
            let end = try p.int64("end_step")
            if (start == nil) != (end == nil) {
                throw RepriseError.invalid("If either start step or end step are specified, both must be specified.")
            }
            if let start, let end, start > end {
                throw RepriseError.invalid("end_step must be greater than start_step. Found start_step=\(start) and end_step=\(end).")
            }
            let max = try p.int64("max_results") ?? 320
            if max < 1 || max > 2500 {
                throw RepriseError.invalid("max_results must be between 1 and 2500 (inclusive). Got max_results=\(max).")
            }
            let metrics = try await store.metricHistoryBulkInterval(
                runIDs: runIDs, key: key, startStep: start, endStep: end, maxResults: Int(max))
            return Self.metricsResponse(EncodedMetrics(metrics, nextOffset: nil))
        }
        route(.get, "/api/2.0/mlflow/metrics/get-history-bulk", access: .experiments(.read, .runIDs("run_id"))) { call in
            let p = try await call.params()
            let runIDs = try p.stringList("run_id")
            if runIDs.isEmpty { throw RepriseError.invalid("GetMetricHistoryBulk request must specify at least one run_id.") }
            if runIDs.count > 100 {
                throw RepriseError.invalid(
                    "GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received \(runIDs.count) run_ids.")
            }
            guard let key = try p.string("metric_key"), !key.isEmpty else {
                throw RepriseError.invalid("GetMetricHistoryBulk request must specify a metric_key.")
            }
            let max = min(Int(clamping: try p.int64("max_results") ?? 25000), 25000)
            if max < 1 { throw RepriseError.invalid("Invalid value \(max) for parameter 'max_results' supplied.") }
            let metrics = try await store.metricHistoryBulk(runIDs: runIDs, key: key, maxResults: max)
            return Self.metricsResponse(EncodedMetrics(metrics, nextOffset: nil))
        }
        // UI-only (served under /ajax-api): the datasets used in these experiments.
        route(.post, "/api/2.0/mlflow/experiments/search-datasets", access: .experiments(.read, .experimentIDs("experiment_ids"))) { call in
            let p = try await call.params()
            let ids = try p.stringList("experiment_ids")
            if ids.isEmpty { throw RepriseError.invalid("SearchDatasets request must specify at least one experiment_id.") }
            if ids.count > 20 {
                throw RepriseError.invalid("SearchDatasets request cannot specify more than 20 experiment_ids. Received \(ids.count) experiment_ids.")
            }
            let summaries = try await store.searchDatasets(experimentIDs: ids)
            if summaries.isEmpty { return Self.json(Self.empty) }
            return Self.json(["dataset_summaries": .array(summaries.map(\.json))])
        }
        route(.post, "/api/2.0/mlflow/artifacts/presigned-upload-url", access: .experiment(.update, .run)) { _ in
            throw RepriseError(.notImplemented, "Presigned URLs are not supported for this artifact repository.")
        }
        route(.post, "/api/2.0/mlflow/artifacts/presigned-download-url", access: .experiment(.read, .run)) { _ in
            throw RepriseError(.notImplemented, "Presigned URLs are not supported for this artifact repository.")
        }
    }

    /// A page of metric points as MLflow writes it: `{"metrics": [...], "next_page_token": ...}`,
    /// empty parts left out. A page of one piece goes in one buffer with its length; a longer one (a
    /// 100,000-point history is 8 MB) streams piece by piece (`EncodedMetrics`, 1 MiB each), each
    /// copied once into the socket's buffer.
    static func metricsResponse(_ page: EncodedMetrics) -> Response {
        var head: [UInt8] = Array("{".utf8)
        var tail: [UInt8] = []
        if page.count > 0 {
            head += Array("\"metrics\":[".utf8)
            tail.append(UInt8(ascii: "]"))
        }
        if let next = page.nextOffset {
            if page.count > 0 { tail.append(UInt8(ascii: ",")) }
            tail += Array("\"next_page_token\":".utf8)
            JSONValue.string(PageToken.encode(offset: next)).write(to: &tail)
        }
        tail.append(UInt8(ascii: "}"))
        let headers: HTTPFields = [.contentType: "application/json"]
        let pieces = page.allPieces
        if pieces.count <= 1 {
            let json = pieces.first ?? []
            var buffer = ByteBuffer()
            buffer.reserveCapacity(head.count + json.count + tail.count)
            buffer.writeBytes(head)
            buffer.writeBytes(json)
            buffer.writeBytes(tail)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: buffer))
        }
        let (first, last) = (head, tail)
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: first.count + page.byteCount + last.count) { writer in
                try await writer.write(ByteBuffer(bytes: first))
                for piece in pieces { try await writer.write(ByteBuffer(bytes: piece)) }
                try await writer.write(ByteBuffer(bytes: last))
                try await writer.finish(nil)
            })
    }
}
