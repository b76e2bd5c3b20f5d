/// What an import carries from another store into this one: the same entities the API serves, with
/// the ids they had there, and what the API never shows (every metric point, a run's deletion
/// time). Every source (an MLflow database, a live MLflow server, a Reprise export) produces these
/// and one store operation writes them (`TrackingStore`'s SQL store: `importBatch`), so the rules
/// of an import (ids kept, nothing duplicated, each entity audited) live in one place.
public struct ImportBatch: Sendable {
    public var experiments: [Experiment] = []
    public var runs: [ImportedRun] = []
    public var loggedModels: [LoggedModel] = []
    public var registeredModels: [ImportedRegisteredModel] = []
    public var webhooks: [ImportedWebhook] = []

    public init() {}

    public var isEmpty: Bool {
        experiments.isEmpty && runs.isEmpty && loggedModels.isEmpty && registeredModels.isEmpty && webhooks.isEmpty
    }
}

/// One run, whole: every point of every metric, not only the latest.
public struct ImportedRun: Sendable {
    public var info: RunInfo
    public var deletedTime: Int64?
    public var params: [KeyValue]
    public var tags: [KeyValue]
    /// Every point, in any order.
    public var history: [Metric]
    /// The latest value per key, as the source decided it.
    public var latest: [Metric]
    public var datasetInputs: [DatasetInput]
    public var modelInputs: [String]
    public var modelOutputs: [ModelOutput]

    public init(
        info: RunInfo, deletedTime: Int64? = nil, params: [KeyValue] = [], tags: [KeyValue] = [], history: [Metric] = [],
        latest: [Metric] = [], datasetInputs: [DatasetInput] = [], modelInputs: [String] = [], modelOutputs: [ModelOutput] = []
    ) {
        self.info = info
        self.deletedTime = deletedTime
        self.params = params
        self.tags = tags
        self.history = history
        self.latest = latest
        self.datasetInputs = datasetInputs
        self.modelInputs = modelInputs
        self.modelOutputs = modelOutputs
    }
}

/// A registered model with its versions (their tags) and aliases.
public struct ImportedRegisteredModel: Sendable {
    public var model: RegisteredModel
    public var versions: [ModelVersion]
    public init(model: RegisteredModel, versions: [ModelVersion]) {
        self.model = model
        self.versions = versions
    }
}

/// A webhook without its secret: a source never hands one over in clear (MLflow keeps it encrypted
/// under a key of its own), so one that had a secret arrives disabled, to be given a new secret
/// and enabled again by its owner.
public struct ImportedWebhook: Sendable {
    public var webhook: Webhook
    public var hadSecret: Bool
    public init(webhook: Webhook, hadSecret: Bool) {
        self.webhook = webhook
        self.hadSecret = hadSecret
    }
}

/// The entity kinds an import counts, in the order it brings them across.
public enum ImportEntity: String, Sendable, CaseIterable {
    case experiments, runs, params, tags
    case metricPoints = "metric points"
    case datasets = "dataset inputs"
    case loggedModels = "logged models"
    case registeredModels = "registered models"
    case modelVersions = "model versions"
    case aliases
    case webhooks
}

/// What one batch added and what was there already (from an earlier, interrupted or completed,
/// import of the same source).
public struct ImportTally: Sendable, Equatable {
    public var added: [ImportEntity: Int] = [:]
    public var present: [ImportEntity: Int] = [:]
    public init() {}

    public mutating func add(_ other: ImportTally) {
        for (k, v) in other.added { added[k, default: 0] += v }
        for (k, v) in other.present { present[k, default: 0] += v }
    }
}

/// The reserved tags an import puts on every run it brings in: where it came from, when, and which
/// passport fields the source could not provide (marked missing, never invented).
public enum ImportTag {
    public static let source = "reprise.import.source"
    public static let time = "reprise.import.time"
    public static let passportMissing = "reprise.import.passport_missing"

    public static func isImportTag(_ key: String) -> Bool { key.hasPrefix("reprise.import.") }
}
