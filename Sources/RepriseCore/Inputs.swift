/// Checked inputs for the store's run writes.
///
/// MLflow's rules for what a run may be sent (batch sizes, key names, timestamps, duplicate params,
/// value lengths, dataset fields) are decided here, once, and a store method takes these types
/// rather than raw arrays. The only way to make one is the throwing initializer, so every backend is
/// held to the same rules whoever calls it (a route, the CLI, an importer, a conformance test),
/// and the routes keep only what is about the wire: reading JSON into entities.

/// What one log-metric, log-param, set-tag or log-batch request writes to a run.
public struct RunBatch: Sendable, Equatable {
    public let metrics: [Metric]
    /// Values truncated to `Validation.maxParamValueLength`, as MLflow stores them.
    public let params: [KeyValue]
    /// Values truncated to `Validation.maxTagValueLength`.
    public let tags: [KeyValue]
    /// Which of MLflow's messages a changed param value gets.
    public let conflictStyle: ParamConflictStyle

    /// - Throws: `RepriseError` (`INVALID_PARAMETER_VALUE`) with the reference server's message for
    ///   the first rule broken, in its order: sizes, metrics, params (keys, then duplicates), tags.
    public init(metrics: [Metric] = [], params: [KeyValue] = [], tags: [KeyValue] = [], conflictStyle: ParamConflictStyle = .batch) throws {
        try Self.checkSizes(metrics: metrics.count, params: params.count, tags: tags.count)
        var checkedKeys = Set<String>()
        for m in metrics { try Self.check(m, checkedKeys: &checkedKeys) }
        for p in params { try Validation.validateKey(p.key, lengthLabel: "Param key") }
        var seen = Set<String>()
        var duplicates: [String] = []
        for p in params where !seen.insert(p.key).inserted { duplicates.append(p.key) }
        if !duplicates.isEmpty {
            throw RepriseError.invalid(
                "Duplicate parameter keys have been submitted: [\(duplicates.map { "'\($0)'" }.joined(separator: ", "))]. Please ensure the request contains only one param value per param key."
            )
        }
        for t in tags { try Validation.validateKey(t.key, lengthLabel: "Tag key") }
        try PassportTag.refuseServerOwned(tags.map(\.key))
        self.metrics = metrics
        self.params = params.map { KeyValue($0.key, Validation.truncated($0.value, max: Validation.maxParamValueLength)) }
        self.tags = tags.map { KeyValue($0.key, Validation.truncated($0.value, max: Validation.maxTagValueLength)) }
        self.conflictStyle = conflictStyle
    }

    /// The batch limits, checkable on the raw counts before any item is read (a request with
    /// 100,000 metrics is refused without decoding them).
    public static func checkSizes(metrics: Int, params: Int, tags: Int) throws {
        if metrics > Validation.maxBatchMetrics {
            throw RepriseError.invalid(
                "A batch logging request can contain at most \(Validation.maxBatchMetrics) metrics. Got \(metrics) metrics. Please split up metrics across multiple requests and try again."
            )
        }
        if params > Validation.maxBatchParams {
            throw RepriseError.invalid(
                "A batch logging request can contain at most \(Validation.maxBatchParams) params. Got \(params) params. Please split up params across multiple requests and try again."
            )
        }
        if tags > Validation.maxBatchTags {
            throw RepriseError.invalid(
                "A batch logging request can contain at most \(Validation.maxBatchTags) tags. Got \(tags) tags. Please split up tags across multiple requests and try again."
            )
        }
        let total = metrics + params + tags
        if total > Validation.maxBatchTotal {
            throw RepriseError.invalid(
                "A batch logging request can contain at most \(Validation.maxBatchTotal) metrics, params, and tags. Got \(total) metrics, params, and tags. Please split up metrics, params, and tags across multiple requests and try again."
            )
        }
    }

    /// One metric's rules: a valid name and a nonnegative timestamp. `checkedKeys` skips names
    /// already checked (a batch repeats a handful of names over many points).
    public static func check(_ m: Metric, checkedKeys: inout Set<String>) throws {
        if !checkedKeys.contains(m.key) {
            try Validation.validateKey(m.key, lengthLabel: "Metric name")
            checkedKeys.insert(m.key)
        }
        if m.timestamp < 0 {
            throw RepriseError.invalid(
                "Invalid value \(m.timestamp) for parameter 'timestamp' supplied: metric '\(m.key)' (value=\(m.value)). Timestamp must be a nonnegative long (64-bit integer) "
            )
        }
    }
}

/// What one log-inputs request adds to a run: datasets (with their input tags) and model ids.
public struct RunInputs: Sendable, Equatable {
    public let datasets: [DatasetInput]
    public let modelIDs: [String]

    /// - Throws: `RepriseError` naming the first missing field (`datasets[2].dataset.digest`) or
    ///   the first value over its limit.
    public init(datasets: [DatasetInput] = [], modelIDs: [String] = []) throws {
        for (i, input) in datasets.enumerated() { try Self.check(input, index: i) }
        for id in modelIDs where id.isEmpty { throw RepriseError.missing("models.model_id") }
        self.datasets = datasets
        self.modelIDs = modelIDs
    }

    static func check(_ input: DatasetInput, index i: Int) throws {
        let d = input.dataset
        if d.name.isEmpty { throw RepriseError.missing("datasets[\(i)].dataset.name") }
        if d.digest.isEmpty { throw RepriseError.missing("datasets[\(i)].dataset.digest") }
        if d.sourceType.isEmpty { throw RepriseError.missing("datasets[\(i)].dataset.source_type") }
        if d.source.isEmpty { throw RepriseError.missing("datasets[\(i)].dataset.source") }
        func limit(_ v: String?, _ max: Int, _ label: String) throws {
            if let v, v.utf8.count > max {
                throw RepriseError.invalid("Dataset \(label) exceeds the maximum length of \(max) characters")
            }
        }
        try limit(d.name, Validation.maxDatasetNameLength, "name")
        try limit(d.digest, Validation.maxDatasetDigestLength, "digest")
        try limit(d.source, Validation.maxDatasetSourceLength, "source")
        try limit(d.schema, Validation.maxDatasetSchemaLength, "schema")
        try limit(d.profile, Validation.maxDatasetProfileLength, "profile")
        for t in input.tags {
            if t.key.count > Validation.maxInputTagKeyLength {
                throw RepriseError.invalid("'key' exceeds the maximum length of \(Validation.maxInputTagKeyLength) characters")
            }
            if t.value.count > Validation.maxInputTagValueLength {
                throw RepriseError.invalid("'value' exceeds the maximum length of \(Validation.maxInputTagValueLength) characters")
            }
        }
    }
}
