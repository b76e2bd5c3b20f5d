import Foundation
import RepriseCore

/// The identity calls the `reprise login`, `tokens`, `users` and `groups` commands need, on top of `call`.
extension RepriseClient {
    public static let identityPrefix = "/api/reprise/v1"
    /// Groups are MLflow roles in this workspace.
    public static let groupWorkspace = "default"

    /// Who the server thinks this client is: `{"authenticated", "username", "is_admin", "method",
    /// "groups", "token_id"?}`; with authentication off, `authenticated` is false.
    public func whoami() async throws -> JSONValue {
        try await call(.GET, Self.identityPrefix + "/whoami")
    }

    /// Creates an access token; the answer holds `token` (its metadata) and `secret` (shown once).
    public func createToken(name: String, expiresInDays: Int?, username: String? = nil) async throws -> JSONValue {
        var body = JSONObject([("name", .string(name))])
        if let expiresInDays { body["expires_in_days"] = .int(Int64(expiresInDays)) }
        if let username { body["username"] = .string(username) }
        return try await call(.POST, Self.identityPrefix + "/tokens", body: .object(body))
    }

    /// The caller's tokens, or another user's (admins; `*` for everyone's).
    public func tokens(username: String? = nil) async throws -> [JSONValue] {
        let r = try await call(.GET, Self.identityPrefix + "/tokens", query: username.map { [("username", $0)] } ?? [])
        if case .array(let items)? = r["tokens"] { return items }
        return []
    }

    public func revokeToken(id: String) async throws {
        try await call(.DELETE, Self.identityPrefix + "/tokens", body: ["id": .string(id)])
    }

    /// Every group (role) of the default workspace, without the hidden per-user roles (`__user_<id>__`).
    public func groups() async throws -> [JSONValue] {
        let r = try await call(.GET, "/api/3.0/mlflow/roles/list", query: [("workspace", Self.groupWorkspace)])
        guard case .array(let roles)? = r["roles"] else { return [] }
        return roles.filter { !($0["name"]?.stringValue ?? "").hasPrefix("__user_") }
    }

    /// The group (role) called `name`; RESOURCE_DOES_NOT_EXIST when there is none.
    public func group(named name: String) async throws -> JSONValue {
        let r = try await call(.GET, "/api/3.0/mlflow/roles/list", query: [("workspace", Self.groupWorkspace)])
        if case .array(let roles)? = r["roles"], let role = roles.first(where: { $0["name"]?.stringValue == name }) {
            return role
        }
        throw RepriseError(.resourceDoesNotExist, "No group named '\(name)'. `reprise groups list` shows them; `reprise groups create \(name)` makes it.")
    }

    /// A group's id as the roles endpoints take it.
    public func groupID(named name: String) async throws -> Int64 {
        let role = try await group(named: name)
        switch role["id"] {
        case .int(let id)?: return id
        case .string(let s)?: if let id = Int64(s) { return id }
        default: break
        }
        throw RepriseClientError.malformed("id")
    }
}
