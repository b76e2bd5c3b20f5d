import Foundation

/// The run passport's tags: reserved names under `reprise.`, so the stock client and UI read them as
/// ordinary tags.
public enum PassportTag {
    public static let version = "reprise.passport.version"
    // Code
    public static let repo = "reprise.code.repo"
    public static let commit = "reprise.code.commit"
    public static let branch = "reprise.code.branch"
    public static let dirty = "reprise.code.dirty"
    public static let patchSHA256 = "reprise.code.patch_sha256"
    public static let untrackedCount = "reprise.code.untracked_files"
    public static let workdir = "reprise.code.workdir"
    // Data
    public static let dataDigest = "reprise.data.digest"
    public static let dataInputs = "reprise.data.inputs"
    // Environment
    public static let envDigest = "reprise.env.digest"
    public static let envOS = "reprise.env.os"
    public static let envKernel = "reprise.env.kernel"
    public static let envCPU = "reprise.env.cpu"
    public static let envCPUCount = "reprise.env.cpu_count"
    public static let envMemory = "reprise.env.memory_bytes"
    public static let envGPU = "reprise.env.gpu"
    public static let envContainer = "reprise.env.container_image"
    public static let envPython = "reprise.env.python"
    public static let envLockFiles = "reprise.env.lock_files"
    public static let envLockDigest = "reprise.env.lock_sha256"
    // Seeds
    public static let seed = "reprise.seed"
    public static let seedPrefix = "reprise.seed."
    // Context
    public static let owner = "reprise.owner"
    public static let purpose = "reprise.purpose"
    public static let command = "reprise.command"
    public static let baseline = "reprise.baseline"
    public static let exitStatus = "reprise.exit_status"
    /// Why the command did not run (`command not found: pythn`), when it did not.
    public static let failureReason = "reprise.failure_reason"
    public static let durationMillis = "reprise.duration_ms"
    public static let hourlyRate = "reprise.cost.hourly_rate"
    public static let cost = "reprise.cost"
    public static let tolerances = "reprise.tolerances"
    // Duplicates
    public static let inputsFingerprint = "reprise.fingerprint.inputs"
    public static let fingerprint = "reprise.fingerprint"
    /// Set by `reprise reproduce` on the rerun: the run it reproduces.
    public static let reproduces = "reprise.reproduces"

    // Written by the server only.
    public static let compliant = "reprise.compliant"
    public static let complianceMissing = "reprise.compliance.missing"
    public static let verdict = "reprise.reproduction.verdict"
    public static let verdictID = "reprise.reproduction.id"
    public static let verdictOf = "reprise.reproduction.of"
    public static let verdictRerun = "reprise.reproduction.rerun"
    public static let verdictSummary = "reprise.reproduction.summary"

    /// Tags only the server writes; a client that sends one gets a clear error.
    public static func isServerOwned(_ key: String) -> Bool {
        key == compliant || key.hasPrefix("reprise.compliance.") || key.hasPrefix("reprise.reproduction.") || ImportTag.isImportTag(key)
    }

    public static func refuseServerOwned(_ keys: some Sequence<String>) throws {
        for key in keys where isServerOwned(key) {
            throw RepriseError.invalid(
                "Tag '\(key)' is reserved: Reprise's server sets it (compliance with the experiment policy, reproduction verdicts, import provenance). Use another name.")
        }
    }
}

/// A field of the run passport that an experiment policy can require.
public enum PassportField: String, CaseIterable, Sendable {
    case code, data, environment, seed, owner, purpose, command, baseline

    /// Whether a run with these tags (and this many dataset inputs) carries the field.
    public func isPresent(tags: [String: String], datasets: Int) -> Bool {
        func has(_ k: String) -> Bool { !(tags[k] ?? "").isEmpty }
        switch self {
        case .code: return has(PassportTag.commit) || has("mlflow.source.git.commit")
        case .data: return has(PassportTag.dataDigest) || datasets > 0
        case .environment: return has(PassportTag.envDigest)
        case .seed: return has(PassportTag.seed)
        case .owner: return has(PassportTag.owner) || has("mlflow.user")
        case .purpose: return has(PassportTag.purpose)
        case .command: return has(PassportTag.command)
        case .baseline: return has(PassportTag.baseline)
        }
    }

    /// What provides the field, for error messages.
    public var provider: String {
        switch self {
        case .code: return "git commit (reprise run in a git repository, or tag mlflow.source.git.commit)"
        case .data: return "input data digests (reprise run --data PATH, or a dataset logged with log_input)"
        case .environment: return "environment fingerprint (reprise run)"
        case .seed: return "seed (reprise run --seed N, or tag reprise.seed)"
        case .owner: return "owner (tag reprise.owner or mlflow.user)"
        case .purpose: return "purpose (reprise run --purpose TEXT, or tag reprise.purpose)"
        case .command: return "command line (reprise run)"
        case .baseline: return "baseline run (reprise run --baseline RUN_ID, or tag reprise.baseline)"
        }
    }

    public static func parse(_ s: String) throws -> PassportField {
        guard let f = PassportField(rawValue: s.trimmingCharacters(in: .whitespaces).lowercased()) else {
            throw RepriseError.invalid(
                "Unknown passport field '\(s)'. Valid fields are: \(allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return f
    }
}

public enum PolicyMode: String, Sendable {
    /// Refuse runs that miss a required field, at creation and at finish.
    case strict
    /// Accept them and tag them `reprise.compliant = false`.
    case soft
}

/// What an experiment requires of its runs.
public struct ExperimentPolicy: Sendable, Equatable {
    public var experimentID: String
    public var mode: PolicyMode
    public var required: [PassportField]
    /// Refuse (strict) or flag (soft) runs whose working tree had uncommitted changes.
    public var refuseDirty: Bool
    /// Tell `reprise run` to refuse, not only warn, when a finished run has the same inputs fingerprint.
    public var refuseDuplicates: Bool
    public var updatedTime: Int64
    public var updatedBy: String

    public init(
        experimentID: String, mode: PolicyMode, required: [PassportField], refuseDirty: Bool = false, refuseDuplicates: Bool = false,
        updatedTime: Int64 = 0, updatedBy: String = ""
    ) {
        self.experimentID = experimentID
        self.mode = mode
        self.required = required
        self.refuseDirty = refuseDirty
        self.refuseDuplicates = refuseDuplicates
        self.updatedTime = updatedTime
        self.updatedBy = updatedBy
    }

    public var json: JSONValue {
        [
            "experiment_id": .string(experimentID), "mode": .string(mode.rawValue),
            "required": .array(required.map { .string($0.rawValue) }), "refuse_dirty": .bool(refuseDirty),
            "refuse_duplicates": .bool(refuseDuplicates), "updated_timestamp": .int(updatedTime), "updated_by": .string(updatedBy),
        ]
    }

    /// The fields a run misses, and whether its tree was dirty when that is refused.
    public func evaluate(tags: [String: String], datasets: Int) -> [String] {
        var problems = required.filter { !$0.isPresent(tags: tags, datasets: datasets) }.map(\.rawValue)
        if refuseDirty, tags[PassportTag.dirty] == "true" { problems.append(Self.cleanTree) }
        return problems
    }

    /// The problem `evaluate` names for a dirty working tree.
    public static let cleanTree = "clean working tree"

    public func refusal(_ problems: [String], when: String) -> RepriseError {
        let fields = problems.filter { $0 != Self.cleanTree }
        var message = "Run refused \(when) by the strict policy of experiment \(experimentID):"
        if !fields.isEmpty {
            let details = fields.map { p in PassportField(rawValue: p).map { "\(p) [\($0.provider)]" } ?? p }
            message += " missing \(details.joined(separator: "; ")). Run it with `reprise run` (see `reprise run --help`), or ask the experiment's owner to relax the policy."
        }
        if problems.contains(Self.cleanTree) {
            message += (fields.isEmpty ? "" : " It also")
                + " needs a \(Self.cleanTree): the code had uncommitted changes. Commit them (or `git stash --include-untracked`) and run again, or ask the experiment's owner to allow dirty runs (`reprise policy set` without --refuse-dirty)."
        }
        return RepriseError.invalid(message)
    }
}

public enum ReproductionVerdict: String, Sendable {
    case reproduced = "REPRODUCED"
    case diverged = "DIVERGED"
    case incomplete = "INCOMPLETE"

    public init(parsing s: String) throws {
        guard let v = ReproductionVerdict(rawValue: s.uppercased()) else {
            throw RepriseError.invalid("Invalid verdict '\(s)'. Valid verdicts are REPRODUCED, DIVERGED and INCOMPLETE.")
        }
        self = v
    }
}

/// One attempt to reproduce a run, as `reprise reproduce` reports it.
public struct Reproduction: Sendable, Equatable {
    public var id: String
    public var originalRunID: String
    /// The rerun; empty when the attempt stopped before rerunning (INCOMPLETE).
    public var rerunRunID: String
    public var verdict: ReproductionVerdict
    public var summary: String
    /// Per-metric comparisons, data and environment differences: JSON text.
    public var details: String
    public var time: Int64
    public var actor: String

    public init(
        id: String, originalRunID: String, rerunRunID: String, verdict: ReproductionVerdict, summary: String, details: String, time: Int64,
        actor: String
    ) {
        self.id = id
        self.originalRunID = originalRunID
        self.rerunRunID = rerunRunID
        self.verdict = verdict
        self.summary = summary
        self.details = details
        self.time = time
        self.actor = actor
    }

    public var json: JSONValue {
        [
            "id": .string(id), "original_run_id": .string(originalRunID), "rerun_run_id": .string(rerunRunID),
            "verdict": .string(verdict.rawValue), "summary": .string(summary), "details": (try? JSONValue.parse(details)) ?? .string(details),
            "timestamp": .int(time), "actor": .string(actor),
        ]
    }
}

/// One node of the lineage graph.
public struct LineageNode: Sendable, Hashable {
    /// `dataset`, `run`, `logged_model`, `model_version`, `alias`, `registered_model`.
    public var type: String
    public var id: String
    public var label: String

    public init(type: String, id: String, label: String) {
        self.type = type
        self.id = id
        self.label = label
    }

    public var key: String { "\(type):\(id)" }
    public var json: JSONValue { ["type": .string(type), "id": .string(id), "label": .string(label)] }
}

public struct LineageEdge: Sendable, Hashable {
    public var from: String
    public var to: String
    /// `input_of`, `produced`, `registered_as`, `points_to`, `reproduces`, `parent_of`, `version_of`.
    public var relation: String

    public init(from: String, to: String, relation: String) {
        self.from = from
        self.to = to
        self.relation = relation
    }

    public var json: JSONValue { ["from": .string(from), "to": .string(to), "relation": .string(relation)] }
}

public struct LineageGraph: Sendable {
    public var root: String
    public var nodes: [LineageNode]
    public var edges: [LineageEdge]

    public init(root: String, nodes: [LineageNode], edges: [LineageEdge]) {
        self.root = root
        self.nodes = nodes
        self.edges = edges
    }

    public var json: JSONValue {
        ["root": .string(root), "nodes": .array(nodes.map(\.json)), "edges": .array(edges.map(\.json))]
    }
}

/// Experiment policies, reproduction verdicts and lineage: the server side of reproducibility.
public protocol ReproStore: Sendable {
    func setExperimentPolicy(_ policy: ExperimentPolicy) async throws -> ExperimentPolicy
    func experimentPolicy(experimentID: String) async throws -> ExperimentPolicy?
    func deleteExperimentPolicy(experimentID: String) async throws
    /// Stores a verdict and marks both runs with it (even when the original is sealed).
    func recordReproduction(originalRunID: String, rerunRunID: String, verdict: ReproductionVerdict, summary: String, details: JSONValue)
        async throws -> Reproduction
    func reproductions(runID: String) async throws -> [Reproduction]
    /// Walks from `entity` (`run:ID`, `dataset:DIGEST`, `model_version:NAME/N`, `alias:NAME@ALIAS`,
    /// `logged_model:ID`, `registered_model:NAME`) in both directions.
    func lineage(entity: String, depth: Int) async throws -> LineageGraph
}
