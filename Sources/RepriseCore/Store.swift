/// What a new run needs.
public struct CreateRunInput: Sendable {
    public var experimentID: String
    public var userID: String
    public var runName: String?
    public var startTime: Int64
    public var tags: [KeyValue]
    public init(experimentID: String, userID: String, runName: String?, startTime: Int64, tags: [KeyValue]) {
        self.experimentID = experimentID
        self.userID = userID
        self.runName = runName
        self.startTime = startTime
        self.tags = tags
    }
}

/// What a new logged model needs.
public struct CreateLoggedModelInput: Sendable {
    public var experimentID: String
    public var name: String?
    public var modelType: String?
    public var sourceRunID: String?
    public var params: [KeyValue]
    public var tags: [KeyValue]
    public init(
        experimentID: String, name: String?, modelType: String?, sourceRunID: String?, params: [KeyValue],
        tags: [KeyValue]
    ) {
        self.experimentID = experimentID
        self.name = name
        self.modelType = modelType
        self.sourceRunID = sourceRunID
        self.params = params
        self.tags = tags
    }
}

/// A dataset used by runs of an experiment (for the UI's dataset filter).
public struct DatasetSummary: Sendable, Equatable {
    public var experimentID: String
    public var name: String
    public var digest: String
    public var context: String?
    public init(experimentID: String, name: String, digest: String, context: String?) {
        self.experimentID = experimentID
        self.name = name
        self.digest = digest
        self.context = context
    }
    public var json: JSONValue {
        var o = JSONObject([("experiment_id", .string(experimentID)), ("name", .string(name)), ("digest", .string(digest))])
        if let context { o["context"] = .string(context) }
        return .object(o)
    }
}

/// How the param-immutability error is worded: the single-param and batch endpoints differ.
public enum ParamConflictStyle: Sendable {
    case single, batch
}

/// Where new experiments put their artifacts.
public struct ArtifactRootPolicy: Sendable {
    /// The root for new experiments: `mlflow-artifacts:/` when serving artifacts, else a path or URI.
    public var defaultRoot: String
    /// The directory relative artifact locations resolve against (the server's working directory).
    public var workingDirectory: String
    public init(defaultRoot: String, workingDirectory: String) {
        self.defaultRoot = defaultRoot
        self.workingDirectory = workingDirectory
    }

    /// `<root>/<id>`, without doubling slashes.
    public func location(forExperiment id: String) -> String {
        defaultRoot.hasSuffix("/") ? defaultRoot + id : defaultRoot + "/" + id
    }

    /// Resolves a user-supplied artifact location: a relative local path becomes absolute against the
    /// CWD, and the path of a local or `mlflow-artifacts:` location is normalised (`a/./b//c` →
    /// `a/b/c`), so one place has one spelling (sealed artifacts are matched by location).
    public func resolve(_ location: String) -> String {
        if Validation.startsWithSlash(location) { return Validation.normpath(location) }
        for scheme in ["file://", "mlflow-artifacts://"] where location.hasPrefix(scheme) {
            let rest = location.dropFirst(scheme.count)
            guard let slash = Validation.firstSlash(in: rest) else { return location }
            return scheme + rest[..<slash] + Validation.normpath(String(rest[slash...]))
        }
        for scheme in ["file:", "mlflow-artifacts:"] where location.hasPrefix(scheme) && Validation.startsWithSlash(location.dropFirst(scheme.count)) {
            return scheme + Validation.normpath(String(location.dropFirst(scheme.count)))
        }
        if location.contains(":") { return location }
        let base = workingDirectory.hasSuffix("/") ? String(workingDirectory.dropLast()) : workingDirectory
        return Validation.normpath(base + "/" + location)
    }
}

/// The tracking store: experiments, runs and their data, logged models.
///
/// Every method is atomic: it either applies completely or throws and changes nothing. A write
/// returns only once it is durable. Implementations throw `RepriseError` for every failure a
/// client can cause.
public protocol TrackingStore: Sendable {
    // Experiments
    func createExperiment(name: String, artifactLocation: String?, tags: [KeyValue]) async throws -> String
    func getExperiment(id: String) async throws -> Experiment
    func getExperiment(name: String) async throws -> Experiment
    func searchExperiments(_ query: ExperimentSearchQuery) async throws -> Page<Experiment>
    func renameExperiment(id: String, newName: String) async throws
    func deleteExperiment(id: String) async throws
    func restoreExperiment(id: String) async throws
    func setExperimentTag(id: String, tag: KeyValue) async throws
    func deleteExperimentTag(id: String, key: String) async throws
    /// The model version (`name/N`) whose evidence covers the artifact `location` (a full artifact
    /// URI such as `mlflow-artifacts:/1/<run>/artifacts/model/MLmodel`), or nil when writing or
    /// deleting there changes nothing sealed. Sealed are: the artifacts of a finished run a version
    /// was registered from, the files of a logged model behind a version, and a version's source
    /// folder. A location that contains a sealed folder (deleting a parent) counts too.
    ///
    /// `locations` are every spelling of the same place (`mlflow-artifacts:/x`, the path under the
    /// artifacts destination, its `file://` form); stored `mlflow-artifacts://host/…` URIs are
    /// compared without their host.
    func artifactSeal(locations: [String]) async throws -> String?
    /// Answers once the database answers a trivial read (readiness probes); throws otherwise.
    func checkReady() async throws

    /// Records what an artifact held when it was stored (replacing an earlier record for the same
    /// location): its size and, when its bytes passed through the server, their SHA-256.
    func recordArtifactDigest(_ digest: ArtifactDigest) async throws
    /// Adds the SHA-256 to a size-only record (a multipart upload, hashed by reading it back once
    /// complete), only if the record is still the one made at `recordedTime` with `size` bytes: a
    /// later upload of the same location keeps its own record.
    /// - Returns: whether the record was completed.
    func completeArtifactDigest(location: String, recordedTime: Int64, size: Int64, sha256: String, method: String) async throws -> Bool
    /// The records of the artifacts under `root` (a run's artifact URI; `root` itself excluded),
    /// sorted by location (byte order).
    func artifactDigests(under root: String) async throws -> [ArtifactDigest]
    /// Drops the record of `location` and of everything under it (the artifacts were deleted).
    func forgetArtifactDigests(at location: String) async throws

    /// The experiment a run belongs to (for permission checks; a run never moves).
    func experimentID(ofRun id: String) async throws -> String
    /// The experiment a logged model belongs to.
    func experimentID(ofLoggedModel id: String) async throws -> String

    // Runs
    func createRun(_ input: CreateRunInput) async throws -> Run
    func getRun(id: String) async throws -> Run
    func updateRun(id: String, status: RunStatus?, endTime: Int64?, runName: String?) async throws -> RunInfo
    func deleteRun(id: String) async throws
    func restoreRun(id: String) async throws
    /// Appends one model's description to the run's `mlflow.log-model.history` tag (a JSON list),
    /// reading and writing the tag in one transaction, so concurrent calls each keep their entry.
    func appendLoggedModelHistory(runID: String, model: JSONObject) async throws
    /// Params first, then metrics, then tags; all or nothing. The batch was checked when it was made
    /// (`RunBatch`); what only the stored run can tell (active, not sealed, a changed param) is checked here.
    func logBatch(runID: String, _ batch: RunBatch) async throws
    func deleteTag(runID: String, key: String) async throws
    func logInputs(runID: String, _ inputs: RunInputs) async throws
    func logOutputs(runID: String, outputs: [ModelOutput]) async throws
    func searchRuns(_ query: RunSearchQuery) async throws -> Page<Run>
    /// Ordered by (timestamp, step, value).
    func metricHistory(runID: String, key: String, offset: Int, limit: Int?) async throws -> Page<Metric>
    /// The same page, written as MLflow's JSON as it is read (get-history's path).
    func metricHistoryEncoded(runID: String, key: String, offset: Int, limit: Int?) async throws -> EncodedMetrics
    /// Sampled history for several runs, each point tagged with its run id.
    func metricHistoryBulkInterval(
        runIDs: [String], key: String, startStep: Int64?, endStep: Int64?, maxResults: Int
    ) async throws -> [Metric]
    /// The distinct datasets used as inputs by the runs of these experiments, with their context tag.
    func searchDatasets(experimentIDs: [String]) async throws -> [DatasetSummary]
    /// The smallest and largest value each run logged for each of `keys` (NaN left out).
    func metricRanges(runIDs: [String], keys: [String]) async throws -> [String: [String: (min: Double, max: Double)]]
    /// Active runs per experiment and the latest start or end among them, for the experiments list.
    func experimentActivity(experimentIDs: [String]) async throws -> [String: (runs: Int, lastActivity: Int64)]
    /// All points of one key for several runs, sorted by run id then (timestamp, step, value).
    func metricHistoryBulk(runIDs: [String], key: String, maxResults: Int) async throws -> [Metric]
    /// One run's history of `key` for a chart: the finite points with x in `from...to` (axis units,
    /// nil: the whole history), exact when at most `maxPoints`, else bucketed (`MetricSeries`).
    func metricSeries(runID: String, key: String, axis: MetricAxis, from: Double?, to: Double?, maxPoints: Int) async throws -> MetricSeries

    // Logged models
    func createLoggedModel(_ input: CreateLoggedModelInput) async throws -> LoggedModel
    func getLoggedModel(id: String, allowDeleted: Bool) async throws -> LoggedModel
    func finalizeLoggedModel(id: String, status: LoggedModelStatus) async throws -> LoggedModel
    func deleteLoggedModel(id: String) async throws
    func setLoggedModelTags(id: String, tags: [KeyValue]) async throws
    func deleteLoggedModelTag(id: String, key: String) async throws
    func logLoggedModelParams(id: String, params: [KeyValue]) async throws
    func searchLoggedModels(_ query: LoggedModelSearchQuery) async throws -> Page<LoggedModel>
}

extension TrackingStore {
    /// Checks the items (`RunBatch`'s rules) and logs them.
    public func logBatch(
        runID: String, metrics: [Metric], params: [KeyValue], tags: [KeyValue], conflictStyle: ParamConflictStyle
    ) async throws {
        try await logBatch(runID: runID, try RunBatch(metrics: metrics, params: params, tags: tags, conflictStyle: conflictStyle))
    }

    /// Checks the inputs (`RunInputs`'s rules) and logs them.
    public func logInputs(runID: String, datasets: [DatasetInput], modelIDs: [String]) async throws {
        try await logInputs(runID: runID, try RunInputs(datasets: datasets, modelIDs: modelIDs))
    }
}

/// What an artifact held when it was stored, recorded by the server as the bytes streamed through
/// it (`reprise artifacts verify` compares the artifact with it later).
public struct ArtifactDigest: Sendable, Equatable {
    /// The artifact's full location, as its run names it: `mlflow-artifacts:/1/<run>/artifacts/a.txt`,
    /// or the run's artifact URI (a path, `s3://…`) and the relative path.
    public var location: String
    public var size: Int64
    /// The lowercase hex SHA-256 of the bytes; nil when they did not pass through the server (a
    /// multipart upload sends its parts straight to the bucket), so only the size is known.
    public var sha256: String?
    /// Milliseconds since the epoch.
    public var recordedTime: Int64
    /// How the bytes arrived: `put` (the artifact proxy), `upload` (`upload-artifact`),
    /// `multipart` (presigned parts; not hashed yet) or `multipart-readback` (presigned parts,
    /// hashed by the server reading the object back once the upload completed).
    public var method: String

    public init(location: String, size: Int64, sha256: String?, recordedTime: Int64, method: String) {
        self.location = location
        self.size = size
        self.sha256 = sha256
        self.recordedTime = recordedTime
        self.method = method
    }

    public var json: JSONValue {
        var o = JSONObject([("location", .string(location)), ("size", .int(size))])
        if let sha256 { o["sha256"] = .string(sha256) }
        o["recorded_time"] = .int(recordedTime)
        o["method"] = .string(method)
        return .object(o)
    }
}
