import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One registry event a webhook subscribes to, as MLflow 3.x names it on the wire
/// (`{"entity": "MODEL_VERSION", "action": "CREATED"}`).
public struct WebhookEvent: Hashable, Comparable, Sendable {
    /// Upper-case wire name, e.g. `MODEL_VERSION_ALIAS`.
    public var entity: String
    /// Upper-case wire name, e.g. `CREATED`.
    public var action: String

    /// The events MLflow defines, entity → valid actions (lower case, as its messages print them).
    public static let validActions: [String: [String]] = [
        "registered_model": ["created"],
        "model_version": ["created"],
        "model_version_tag": ["deleted", "set"],
        "model_version_alias": ["created", "deleted"],
        "prompt": ["created"],
        "prompt_version": ["created"],
        "prompt_tag": ["deleted", "set"],
        "prompt_version_tag": ["deleted", "set"],
        "prompt_alias": ["created", "deleted"],
        // Accepted for compatibility; Reprise has no AI gateway, so nothing emits it yet.
        "budget_policy": ["exceeded"],
        // Reprise's own: deployments recorded, incidents opened and closed.
        "deployment": ["created"],
        "incident": ["closed", "created"],
    ]

    public init(entity: String, action: String) {
        self.entity = entity.uppercased()
        self.action = action.uppercased()
    }

    /// Parses and checks one `{entity, action}` object from a request.
    public init(validating json: JSONValue) throws {
        guard case .object(let o) = json, let e = o["entity"]?.stringValue, let a = o["action"]?.stringValue,
            !e.isEmpty, !a.isEmpty
        else {
            throw RepriseError.invalid(
                "Each webhook event must be an object with string fields 'entity' and 'action', for example {\"entity\": \"MODEL_VERSION\", \"action\": \"CREATED\"}; got \(json.pythonDumps).")
        }
        let entity = e.lowercased()
        let action = a.lowercased()
        guard let actions = Self.validActions[entity] else {
            throw RepriseError.invalid(
                "Invalid webhook event entity '\(entity)'. Valid entities are: \(Self.validActions.keys.sorted().joined(separator: ", ")).")
        }
        guard actions.contains(action) else {
            throw RepriseError.invalid(
                "Invalid action '\(action)' for entity '\(entity)'. Valid actions are: [\(actions.map { "'\($0)'" }.joined(separator: ", "))]")
        }
        self.init(entity: entity, action: action)
    }

    /// `model_version.created`: the name the payload and MLflow's docs use.
    public var dottedName: String { "\(entity.lowercased()).\(action.lowercased())" }

    public var json: JSONValue { ["entity": .string(entity), "action": .string(action)] }

    /// The body a delivery of this event sends: `{"entity", "action", "timestamp", "data"}`, with the
    /// names in lower case and the time in UTC with microseconds, as MLflow sends them.
    public func payload(data: JSONValue, at date: Date) -> String {
        let json: JSONValue = [
            "entity": .string(entity.lowercased()), "action": .string(action.lowercased()),
            "timestamp": .string(Self.timestamp(date)), "data": data,
        ]
        return json.jsonString
    }

    /// `2026-11-30T14:16:06.582013+00:00`.
    public static func timestamp(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        return TraceTime.rfc3339(seconds: micros / 1_000_000, fraction: micros % 1_000_000, digits: 6, zone: "+00:00")
    }

    public static func < (a: WebhookEvent, b: WebhookEvent) -> Bool { (a.entity, a.action) < (b.entity, b.action) }

    /// Parses the request's `events` list: non-empty, each valid; duplicates collapse; sorted.
    public static func parseList(_ items: [JSONValue]) throws -> [WebhookEvent] {
        if items.isEmpty {
            throw RepriseError.invalid("Webhook events must be a non-empty list of WebhookEvent objects: [].")
        }
        return Array(Set(try items.map { try WebhookEvent(validating: $0) })).sorted()
    }
}

public enum WebhookStatus: String, Sendable {
    case active = "ACTIVE"
    case disabled = "DISABLED"

    public init(parsing s: String) throws {
        guard let v = WebhookStatus(rawValue: s.uppercased()) else {
            throw RepriseError.invalid("Invalid webhook status '\(s)'. Valid statuses are ACTIVE and DISABLED.")
        }
        self = v
    }
}

/// A registered webhook. The signing secret is never part of it: it is stored sealed and only read by
/// the deliverer.
public struct Webhook: Sendable, Equatable {
    public var id: String
    public var name: String
    public var description: String
    public var url: String
    public var events: [WebhookEvent]
    public var status: WebhookStatus
    public var creationTime: Int64
    public var lastUpdatedTime: Int64

    public init(
        id: String, name: String, description: String, url: String, events: [WebhookEvent], status: WebhookStatus,
        creationTime: Int64, lastUpdatedTime: Int64
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.url = url
        self.events = events
        self.status = status
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["webhook_id"] = .string(id)
        o["name"] = .string(name)
        if !description.isEmpty { o["description"] = .string(description) }
        o["url"] = .string(url)
        o["events"] = .array(events.map(\.json))
        o["status"] = .string(status.rawValue)
        o["creation_timestamp"] = .int(creationTime)
        o["last_updated_timestamp"] = .int(lastUpdatedTime)
        return .object(o)
    }
}

/// Fields a PATCH may change; nil leaves a field as it is.
public struct WebhookUpdate: Sendable {
    public var name: String?
    public var description: String?
    public var url: String?
    public var events: [WebhookEvent]?
    public var status: WebhookStatus?
    /// A new secret; an empty string removes the secret.
    public var secret: String?

    public init(
        name: String? = nil, description: String? = nil, url: String? = nil, events: [WebhookEvent]? = nil,
        status: WebhookStatus? = nil, secret: String? = nil
    ) {
        self.name = name
        self.description = description
        self.url = url
        self.events = events
        self.status = status
        self.secret = secret
    }
}

public enum WebhookDeliveryState: String, Sendable {
    case pending = "PENDING"
    case delivered = "DELIVERED"
    case failed = "FAILED"
}

/// One event on its way to one webhook: a row of the transactional outbox. It is written in the same
/// transaction as the change it announces, so an event is delivered exactly when its change committed.
public struct WebhookDelivery: Sendable, Equatable {
    public var id: String
    public var webhookID: String
    public var event: WebhookEvent
    /// The exact JSON body that is sent and signed.
    public var payload: String
    /// Seconds since the epoch; the `X-MLflow-Timestamp` header, fixed at creation so that retries
    /// carry the same signed content.
    public var timestamp: Int64
    public var state: WebhookDeliveryState
    public var attempts: Int
    public var nextAttemptTime: Int64
    public var lastStatus: Int?
    public var lastError: String
    public var creationTime: Int64
    public var lastUpdatedTime: Int64

    public init(
        id: String, webhookID: String, event: WebhookEvent, payload: String, timestamp: Int64, state: WebhookDeliveryState,
        attempts: Int, nextAttemptTime: Int64, lastStatus: Int?, lastError: String, creationTime: Int64, lastUpdatedTime: Int64
    ) {
        self.id = id
        self.webhookID = webhookID
        self.event = event
        self.payload = payload
        self.timestamp = timestamp
        self.state = state
        self.attempts = attempts
        self.nextAttemptTime = nextAttemptTime
        self.lastStatus = lastStatus
        self.lastError = lastError
        self.creationTime = creationTime
        self.lastUpdatedTime = lastUpdatedTime
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["delivery_id"] = .string(id)
        o["webhook_id"] = .string(webhookID)
        o["event"] = event.json
        o["state"] = .string(state.rawValue)
        o["attempts"] = .int(Int64(attempts))
        if state == .pending { o["next_attempt_timestamp"] = .int(nextAttemptTime) }
        if let lastStatus { o["last_response_status"] = .int(Int64(lastStatus)) }
        if !lastError.isEmpty { o["last_error"] = .string(lastError) }
        o["payload"] = (try? JSONValue.parse(payload)) ?? .string(payload)
        o["creation_timestamp"] = .int(creationTime)
        o["last_updated_timestamp"] = .int(lastUpdatedTime)
        return .object(o)
    }
}

/// A delivery claimed by a deliverer, with what it needs to send it.
public struct ClaimedDelivery: Sendable {
    public var delivery: WebhookDelivery
    public var url: String
    /// The signing secret in clear, or nil when the webhook has none.
    public var secret: String?

    public init(delivery: WebhookDelivery, url: String, secret: String?) {
        self.delivery = delivery
        self.url = url
        self.secret = secret
    }
}

/// How one delivery attempt ended.
public enum DeliveryOutcome: Sendable {
    case delivered(status: Int)
    /// Try again at `nextAttemptTime` (ms since the epoch).
    case retry(status: Int?, error: String, nextAttemptTime: Int64)
    case failed(status: Int?, error: String)
}

/// What `POST /webhooks/{id}/test` answers.
public struct WebhookTestResult: Sendable {
    public var success: Bool
    public var responseStatus: Int?
    public var responseBody: String?
    public var errorMessage: String?

    public init(success: Bool, responseStatus: Int?, responseBody: String?, errorMessage: String?) {
        self.success = success
        self.responseStatus = responseStatus
        self.responseBody = responseBody
        self.errorMessage = errorMessage
    }

    public var json: JSONValue {
        var o = JSONObject()
        o["success"] = .bool(success)
        if let responseStatus { o["response_status"] = .int(Int64(responseStatus)) }
        if let responseBody { o["response_body"] = .string(responseBody) }
        if let errorMessage { o["error_message"] = .string(errorMessage) }
        return ["result": .object(o)]
    }
}

/// Webhooks and their delivery outbox. Every backend implements it; the deliverer only talks to
/// this protocol, so several server processes can share one database without sending an event twice
/// (a delivery is leased before it is sent).
public protocol WebhookStore: Sendable {
    func createWebhook(
        name: String, description: String, url: String, events: [WebhookEvent], secret: String?, status: WebhookStatus
    ) async throws -> Webhook
    func listWebhooks(maxResults: Int, pageToken: String?) async throws -> Page<Webhook>
    func getWebhook(id: String) async throws -> Webhook
    func updateWebhook(id: String, _ update: WebhookUpdate) async throws -> Webhook
    func deleteWebhook(id: String) async throws
    /// The webhook's secret in clear, for a test delivery.
    func webhookSecret(id: String) async throws -> String?

    /// Leases up to `limit` pending deliveries whose time has come, for `leaseMillis`.
    func claimDeliveries(limit: Int, leaseMillis: Int64) async throws -> [ClaimedDelivery]
    /// Records how an attempt ended and releases the lease.
    func finishDelivery(id: String, outcome: DeliveryOutcome) async throws
    /// A webhook's deliveries, newest first.
    func deliveries(webhookID: String, limit: Int) async throws -> [WebhookDelivery]
    /// Forgets delivered and failed deliveries older than `olderThanMillis`.
    func pruneDeliveries(olderThanMillis: Int64) async throws
    /// Deliveries still to make (pending, whether due now or waiting for a retry).
    func pendingDeliveryCount() async throws -> Int
}

/// Signs a delivery as MLflow does: `v1,` + base64(HMAC-SHA256(secret, "<delivery id>.<timestamp>.<body>")).
/// Lives here as a pure function of its inputs; the HMAC itself comes from the caller's crypto library.
public enum WebhookSignature {
    public static let prefix = "v1,"

    public static func signedContent(deliveryID: String, timestamp: Int64, body: String) -> [UInt8] {
        Array("\(deliveryID).\(timestamp).\(body)".utf8)
    }
}
