import Foundation

// Reprise beyond MLflow: what was deployed where, resolved to exact versions when it is recorded,
// measurements from production against it, and incidents linked to it, so an incident leads back
// through the deployment to the model version, its run and its data.

/// A model or prompt as a deployment names it: `name@alias`, `name/version` (either with an
/// optional `models:/` or `prompts:/` scheme).
public struct RegistryReference: Sendable, Equatable {
    public var name: String
    public var alias: String?
    public var version: Int64?

    public init(name: String, alias: String? = nil, version: Int64? = nil) {
        self.name = name
        self.alias = alias
        self.version = version
    }

    public init(parsing text: String, what: String) throws {
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        for scheme in ["models:/", "prompts:/"] where s.hasPrefix(scheme) { s = s.dropFirst(scheme.count) }
        let bad = RepriseError.invalid("Invalid \(what) '\(text)': use NAME@ALIAS or NAME/VERSION (a number).")
        if let at = s.lastIndex(of: "@") {
            let name = String(s[..<at]), alias = String(s[s.index(after: at)...])
            guard !name.isEmpty, !alias.isEmpty else { throw bad }
            self.init(name: name, alias: alias)
        } else if let slash = s.lastIndex(of: "/") {
            let name = String(s[..<slash])
            guard !name.isEmpty, let v = Int64(s[s.index(after: slash)...]), v > 0 else { throw bad }
            self.init(name: name, version: v)
        } else {
            throw bad
        }
    }

    public var display: String { alias.map { "\(name)@\($0)" } ?? "\(name)/\(version ?? 0)" }
}

/// A model or prompt version a deployment resolved to.
public struct DeployedVersion: Sendable, Equatable {
    public var name: String
    public var version: Int64
    /// The alias it was asked for by, when it was.
    public var alias: String?

    public init(name: String, version: Int64, alias: String?) {
        self.name = name
        self.version = version
        self.alias = alias
    }

    public var json: JSONValue {
        var o = JSONObject([("name", .string(name)), ("version", .string(String(version)))])
        if let alias { o["alias"] = .string(alias) }
        return .object(o)
    }
}

public struct Deployment: Sendable, Equatable {
    public var id: String
    public var environment: String
    public var model: DeployedVersion
    public var prompts: [DeployedVersion]
    public var endpoint: String?
    /// SHA-256 of the deployment's configuration file, when one was given.
    public var configDigest: String?
    public var config: String?
    public var note: String?
    public var deployedBy: String
    public var deployedTime: Int64
    /// The deployment this one replaced in its environment.
    public var previousID: String?

    public init(
        id: String, environment: String, model: DeployedVersion, prompts: [DeployedVersion], endpoint: String?, configDigest: String?,
        config: String?, note: String?, deployedBy: String, deployedTime: Int64, previousID: String?
    ) {
        self.id = id
        self.environment = environment
        self.model = model
        self.prompts = prompts
        self.endpoint = endpoint
        self.configDigest = configDigest
        self.config = config
        self.note = note
        self.deployedBy = deployedBy
        self.deployedTime = deployedTime
        self.previousID = previousID
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["id"] = .string(id)
        o["environment"] = .string(environment)
        o["model"] = model.json
        o["prompts"] = .array(prompts.map(\.json))
        if let endpoint { o["endpoint"] = .string(endpoint) }
        if let configDigest { o["config_sha256"] = .string(configDigest) }
        if let config { o["config"] = .string(config) }
        if let note { o["note"] = .string(note) }
        o["deployed_by"] = .string(deployedBy)
        o["deployed_time"] = .int(deployedTime)
        if let previousID { o["previous_id"] = .string(previousID) }
        return .object(o)
    }
}

/// What recording a deployment needs.
public struct DeploymentInput: Sendable {
    public var environment: String
    public var model: RegistryReference
    public var prompts: [RegistryReference]
    public var endpoint: String?
    public var config: String?
    public var note: String?

    public init(environment: String, model: RegistryReference, prompts: [RegistryReference], endpoint: String?, config: String?, note: String?) {
        self.environment = environment
        self.model = model
        self.prompts = prompts
        self.endpoint = endpoint
        self.config = config
        self.note = note
    }

    public static let maxConfigBytes = 1_000_000

    /// An environment name: letters, digits, `-`, `_`, `.`; at most 100.
    public static func validateEnvironment(_ s: String) throws {
        guard !s.isEmpty, s.utf8.count <= 100,
            s.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) })
        else {
            throw RepriseError.invalid("Invalid environment '\(s)': use letters, digits, '-', '_' or '.', at most 100 characters.")
        }
    }
}

/// One production measurement of a deployment (latency, cost, quality, refusal rate…).
public struct DeploymentMeasurement: Sendable, Equatable {
    public var key: String
    public var value: Double
    public var timestamp: Int64

    public init(key: String, value: Double, timestamp: Int64) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
    }

    public var json: JSONValue { .object(JSONObject([("key", .string(key)), ("value", .double(value)), ("timestamp", .int(timestamp))])) }
}

public struct Incident: Sendable, Equatable {
    public var id: String
    public var deploymentID: String
    public var note: String
    public var openedBy: String
    public var openedTime: Int64
    /// `open` or `closed`.
    public var status: String
    public var closedBy: String?
    public var closedTime: Int64?
    public var resolution: String?

    public init(
        id: String, deploymentID: String, note: String, openedBy: String, openedTime: Int64, status: String, closedBy: String?,
        closedTime: Int64?, resolution: String?
    ) {
        self.id = id
        self.deploymentID = deploymentID
        self.note = note
        self.openedBy = openedBy
        self.openedTime = openedTime
        self.status = status
        self.closedBy = closedBy
        self.closedTime = closedTime
        self.resolution = resolution
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("id", .string(id)), ("deployment_id", .string(deploymentID)), ("note", .string(note)), ("opened_by", .string(openedBy)),
            ("opened_time", .int(openedTime)), ("status", .string(status)),
        ])
        if let closedBy { o["closed_by"] = .string(closedBy) }
        if let closedTime { o["closed_time"] = .int(closedTime) }
        if let resolution { o["resolution"] = .string(resolution) }
        return .object(o)
    }
}

/// Deployments, their measurements and incidents. Every method is atomic and durable once it returns.
public protocol DeploymentStore: Sendable {
    /// Resolves the model and prompt references to versions now (an alias to the version it points
    /// at), and records the deployment as the environment's current one.
    func recordDeployment(_ input: DeploymentInput, user: String) async throws -> Deployment
    func getDeployment(id: String) async throws -> Deployment
    /// Newest first.
    func deployments(environment: String?, maxResults: Int, offset: Int) async throws -> Page<Deployment>
    func logDeploymentMeasurements(id: String, _ measurements: [DeploymentMeasurement]) async throws
    func deploymentMeasurements(id: String, key: String?, maxResults: Int) async throws -> [DeploymentMeasurement]
    func openIncident(deploymentID: String, note: String, user: String) async throws -> Incident
    func closeIncident(id: String, resolution: String, user: String) async throws -> Incident
    func getIncident(id: String) async throws -> Incident
    /// Newest first.
    func incidents(deploymentID: String?, environment: String?, status: String?, maxResults: Int) async throws -> [Incident]
}
