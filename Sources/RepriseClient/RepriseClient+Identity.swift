import Foundation
import RepriseCore

/// The identity calls the `reprise login`, `tokens`, `users` and `groups` commands need, on top of `call`.
extension RepriseClient {
    public static let identityPrefix = "/api/reprise/v1"
    /// Groups are MLflow roles in this workspace.
    public static let groupWorkspace = "default"

    /// Who the server thinks this client is; with authentication off, `authenticated` is false.
    public func whoami() async throws -> WhoAmI {
        try WhoAmI(wire: try await call(.GET, Self.identityPrefix + "/whoami"))
    }

    /// Creates an access token: its record and its secret (shown once).
    public func createToken(name: String, expiresInDays: Int?, username: String? = nil) async throws -> CreatedToken {
        var body = JSONObject([("name", .string(name))])
        if let expiresInDays { body["expires_in_days"] = .int(Int64(expiresInDays)) }
        if let username { body["username"] = .string(username) }
        return try CreatedToken(wire: try await call(.POST, Self.identityPrefix + "/tokens", body: .object(body)))
    }

    /// The caller's tokens, or another user's (admins; `*` for everyone's).
    public func tokens(username: String? = nil) async throws -> [AccessToken] {
        let r = try await call(.GET, Self.identityPrefix + "/tokens", query: username.map { [("username", $0)] } ?? [])
        return try r.wireArray("tokens").map(AccessToken.init(wire:))
    }

    /// Every user; each with their groups when the caller may see them (admins, or the user themself).
    public func users() async throws -> [UserListing] {
        try await call(.GET, "/api/2.0/mlflow/users/list").wireArray("users").map(UserListing.init(wire:))
    }

    /// The members of a group (role), by user id.
    public func members(ofGroup id: Int64) async throws -> [RoleAssignment] {
        try await call(.GET, "/api/3.0/mlflow/roles/users/list", query: [("role_id", String(id))])
            .wireArray("assignments").map(RoleAssignment.init(wire:))
    }

    public func revokeToken(id: String) async throws {
        try await call(.DELETE, Self.identityPrefix + "/tokens", body: ["id": .string(id)])
    }

    /// Every group (role) of the default workspace, without the hidden per-user roles (`__user_<id>__`).
    public func groups() async throws -> [RoleListing] {
        let r = try await call(.GET, "/api/3.0/mlflow/roles/list", query: [("workspace", Self.groupWorkspace)])
        return try r.wireArray("roles").map(RoleListing.init(wire:)).filter { !$0.isHiddenUserRole }
    }

    /// The group (role) called `name`; RESOURCE_DOES_NOT_EXIST when there is none.
    public func group(named name: String) async throws -> RoleListing {
        if let group = try await groups().first(where: { $0.role.name == name }) { return group }
        throw RepriseError(.resourceDoesNotExist, "No group named '\(name)'. `reprise groups list` shows them; `reprise groups create \(name)` makes it.")
    }

    /// A group's id as the roles endpoints take it.
    public func groupID(named name: String) async throws -> Int64 {
        try await group(named: name).role.id
    }
}
