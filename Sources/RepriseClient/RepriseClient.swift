import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RepriseCore

/// A client of a Reprise (or MLflow) server's REST API, for the CLI and tests.
///
/// Errors in MLflow's envelope come back as `RepriseError` with the server's code and message;
/// transport failures come back as `RepriseClientError`.
public struct RepriseClient: Sendable {
    public let baseURL: String
    /// Sent as `X-Reprise-Actor`. With authentication off it is who the server records for this
    /// client's writes; with it on, only a service account allowed to act for others may send it
    /// (anyone else gets 403), so leave it nil when `credentials` are set unless acting for someone.
    public var actor: String?
    /// Sent as `Authorization` on every call (not on `health()`).
    public var credentials: Credentials?
    let http: HTTPClient
    let timeout: TimeAmount

    /// - Parameters:
    ///   - baseURL: the tracking URI, such as `http://127.0.0.1:5000` (a path prefix is kept).
    ///   - credentials: HTTP Basic or a bearer token; nil for a server with authentication off.
    ///   - http: the HTTP client to use; the shared one by default.
    public init(
        baseURL: String, actor: String? = nil, credentials: Credentials? = nil, http: HTTPClient = .shared,
        timeout: TimeAmount = .seconds(120)
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.actor = actor
        self.credentials = credentials
        self.http = http
        self.timeout = timeout
    }

    /// Adds the headers every request carries: the user agent, `Authorization` and `X-Reprise-Actor`.
    func addIdentity(to request: inout HTTPClientRequest) {
        request.headers.add(name: "User-Agent", value: "reprise-client")
        if let credentials { request.headers.add(name: "Authorization", value: credentials.authorization) }
        if let actor, !actor.isEmpty { request.headers.add(name: "X-Reprise-Actor", value: actor) }
    }

    /// The error for a failed answer. An MLflow error envelope becomes `RepriseError` (except a 401,
    /// which always says how to sign in); a plain-text 401 or 403 (what MLflow's auth sends) becomes
    /// `RepriseClientError.unauthenticated` or `.permissionDenied`.
    func failure(status: Int, method: HTTPMethod, path: String, text: String) -> Error {
        if status == 401 { return RepriseClientError.unauthenticated(refused: credentials?.description) }
        if let json = try? JSONValue.parse(text), let code = json["error_code"]?.stringValue {
            return RepriseError(.init(rawValue: code), json["message"]?.stringValue ?? "")
        }
        if status == 403 { return RepriseClientError.permissionDenied(method: method.rawValue, path: path) }
        return RepriseClientError.status(status, text)
    }

    public static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// Sends `request` with the caller's identity; a failure to reach the server is
    /// `RepriseClientError.unreachable` (the one place requests leave the client).
    func send(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        var request = request
        addIdentity(to: &request)
        do {
            return try await http.execute(request, timeout: timeout)
        } catch {
            throw RepriseClientError.unreachable(url: baseURL, underlying: "\(error)")
        }
    }

    /// Calls an endpoint and returns its JSON body.
    /// - Parameters:
    ///   - method: the HTTP method.
    ///   - path: the API path, such as `/api/2.0/mlflow/runs/get`.
    ///   - query: query parameters (repeated keys allowed).
    ///   - body: a JSON body for POST, PATCH and DELETE.
    @discardableResult
    public func call(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: JSONValue? = nil
    ) async throws -> JSONValue {
        var url = baseURL + path
        if !query.isEmpty { url += "?" + query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serialized()))
        }
        let response = try await send(request)
        let bytes = try await response.body.collect(upTo: 512 * 1024 * 1024)
        let text = String(buffer: bytes)
        let json = text.isEmpty ? JSONValue.object(JSONObject()) : (try? JSONValue.parse(text))
        guard (200..<300).contains(Int(response.status.code)) else {
            throw failure(status: Int(response.status.code), method: method, path: path, text: text)
        }
        return json ?? .string(text)
    }

    /// Whether `/health` answers `OK`.
    public func health() async -> Bool {
        var request = HTTPClientRequest(url: baseURL + "/health")
        request.method = .GET
        guard let response = try? await http.execute(request, timeout: .seconds(5)) else { return false }
        return response.status == .ok
    }

    public func createExperiment(name: String, tags: [KeyValue] = []) async throws -> String {
        let r = try await call(
            .POST, "/api/2.0/mlflow/experiments/create",
            body: ["name": .string(name), "tags": .array(tags.map(\.json))])
        guard let id = r["experiment_id"]?.stringValue else { throw RepriseClientError.malformed("experiment_id") }
        return id
    }

    public func createRun(experimentID: String, runName: String? = nil, startTime: Int64 = 0) async throws -> String {
        var body = JSONObject([("experiment_id", .string(experimentID)), ("start_time", .int(startTime))])
        if let runName { body["run_name"] = .string(runName) }
        let r = try await call(.POST, "/api/2.0/mlflow/runs/create", body: .object(body))
        guard let id = r["run"]?["info"]?["run_id"]?.stringValue else { throw RepriseClientError.malformed("run_id") }
        return id
    }

    public func logMetric(runID: String, key: String, value: Double, timestamp: Int64, step: Int64 = 0) async throws {
        try await call(
            .POST, "/api/2.0/mlflow/runs/log-metric",
            body: ["run_id": .string(runID), "key": .string(key), "value": .double(value), "timestamp": .int(timestamp), "step": .int(step)])
    }
}

public enum RepriseClientError: Error, CustomStringConvertible {
    case unreachable(url: String, underlying: String)
    case status(Int, String)
    case malformed(String)
    /// 401: no credentials were sent, or the server refused them (`refused` says which, never the secret).
    case unauthenticated(refused: String?)
    /// 403 with MLflow's plain-text "Permission denied".
    case permissionDenied(method: String, path: String)

    public var description: String {
        switch self {
        case .unauthenticated(let refused):
            let what = "not authenticated: run `reprise login` or set MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN"
            guard let refused else { return what }
            return what + " (the server refused \(refused))"
        case .permissionDenied(let method, let path):
            return "permission denied: \(method) \(path) needs more access; ask an admin or the owner for a grant"
        case .unreachable(let url, let e): return "Cannot reach the server at \(url) (\(e)). Is `reprise server` running there?"
        case .status(let code, let body): return "The server answered HTTP \(code): \(body.prefix(200))"
        case .malformed(let field): return "The server's answer lacks '\(field)'."
        }
    }
}
