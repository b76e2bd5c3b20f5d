import RepriseCore

/// Where an import reads from: an MLflow database, a live MLflow server, a Reprise export. Each
/// turns what it holds into `ImportBatch` entities, the ids they have there kept; the importer
/// pages through it and one store operation writes the pages.
public protocol ImportSource: Sendable {
    /// The source as a person reads it, without credentials.
    var displayName: String { get }
    /// `mlflow-database`, `mlflow-server`, …: what the audit events and run tags call it.
    var kind: String { get }
    /// What the source holds, per entity (shown as the progress bars' totals and compared by the
    /// verification).
    func totals() async throws -> [ImportEntity: Int]
    func experiments() async throws -> [Experiment]
    /// Run ids in ascending order, after `after`, at most `limit`.
    func runIDs(after: String?, limit: Int) async throws -> [String]
    /// Those runs, whole (every metric point).
    func runs(_ ids: [String]) async throws -> [ImportedRun]
    /// Logged models in ascending id order, after `after`, at most `limit`.
    func loggedModels(after: String?, limit: Int) async throws -> [LoggedModel]
    func registeredModels() async throws -> [ImportedRegisteredModel]
    func webhooks() async throws -> [ImportedWebhook]
    /// What the source holds of these runs (runs, params, tags, metric points, dataset inputs),
    /// for the verification.
    func runCounts(_ ids: [String]) async throws -> [ImportEntity: Int]
    /// Up to `limit` (run, metric key) pairs whose histories the verification compares point by
    /// point: the longest, and others chosen at random.
    func sampleHistories(limit: Int) async throws -> [(runID: String, key: String)]
    /// Every point of one history, ordered by (timestamp, step, value).
    func history(runID: String, key: String) async throws -> [Metric]
    /// What the source holds that this import does not bring across, one line each (with counts).
    func notImported() async throws -> [String]
    /// Facts about the source for the report (its schema version, …).
    func describe() async throws -> [String]
    func close() async throws
}
