/// The identity endpoints' entities as they travel: one encoder (`json`, used by the server) and one
/// decoder (`init(wire:)`, used by the CLI) per type, so the `users`, `groups`, `tokens` and
/// `whoami` commands read fields by name in one place rather than picking at raw JSON.

extension Grant {
    /// A role's grant as MLflow's roles endpoints list it (a `RolePermission`).
    public var rolePermissionJSON: JSONValue {
        let roleID: Int64
        switch holder {
        case .role(let id): roleID = id
        case .user: roleID = 0
        }
        return [
            "id": .int(id), "role_id": .int(roleID), "resource_type": .string(resourceType.rawValue),
            "resource_pattern": .string(pattern), "permission": .string(permission.rawValue),
        ]
    }

    /// Reads a `RolePermission`; an unknown resource type or permission is an error, not a guess.
    public init(rolePermission j: JSONValue) throws {
        guard let id = j.wireInt("id") else { throw WireDecodingError("role permission without an id: \(j.jsonString.prefix(200))") }
        let type = try j.wireString("resource_type", in: "role permission")
        let permission = try j.wireString("permission", in: "role permission")
        guard let resourceType = ResourceType(rawValue: type), let level = Permission(rawValue: permission) else {
            throw WireDecodingError("role permission with an unknown resource type or permission: \(type), \(permission)")
        }
        self.init(
            id: id, holder: .role(j.wireInt("role_id") ?? 0), resourceType: resourceType,
            pattern: try j.wireString("resource_pattern", in: "role permission"), permission: level)
    }
}

/// A role (a group, to Reprise) with the grants it carries, as the roles endpoints serve it.
public struct RoleListing: Sendable, Equatable {
    public var role: Role
    public var grants: [Grant]

    public init(role: Role, grants: [Grant]) {
        self.role = role
        self.grants = grants
    }

    /// The per-user roles MLflow keeps behind each user's own grants (`__user_<id>__`): not groups.
    public var isHiddenUserRole: Bool { role.name.hasPrefix("__user_") }

    public var json: JSONValue {
        [
            "id": .int(role.id), "name": .string(role.name), "workspace": .string(role.workspace),
            "description": role.description.isEmpty ? .null : .string(role.description),
            "permissions": .array(grants.map(\.rolePermissionJSON)),
        ]
    }

    public init(wire j: JSONValue) throws {
        guard let id = j.wireInt("id") else { throw WireDecodingError("role without an id: \(j.jsonString.prefix(200))") }
        self.init(
            role: Role(
                id: id, name: try j.wireString("name", in: "role"), workspace: j.wireOptionalString("workspace") ?? "",
                description: j.wireOptionalString("description") ?? ""),
            grants: try j.wireArray("permissions").map(Grant.init(rolePermission:)))
    }
}

/// A user as the users endpoints serve one. `users/get` and `users/create` answer MLflow's fields
/// only; `users/list` adds whether it is a service account and, for admins and the user themself,
/// the user's roles.
public struct UserListing: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var isAdmin: Bool
    /// nil where the endpoint does not say (MLflow's own user objects).
    public var isService: Bool?
    /// nil where the endpoint does not list them.
    public var roles: [RoleListing]?

    public init(id: Int64, username: String, isAdmin: Bool, isService: Bool? = nil, roles: [RoleListing]? = nil) {
        self.id = id
        self.username = username
        self.isAdmin = isAdmin
        self.isService = isService
        self.roles = roles
    }

    public init(_ account: UserAccount) {
        self.init(id: account.id, username: account.username, isAdmin: account.isAdmin)
    }

    /// The groups the user is in, without the hidden per-user roles.
    public var groupNames: [String] { (roles ?? []).filter { !$0.isHiddenUserRole }.map(\.role.name) }

    public var json: JSONValue {
        var o = JSONObject([("id", .int(id)), ("username", .string(username)), ("is_admin", .bool(isAdmin))])
        if let roles { o["roles"] = .array(roles.map(\.json)) }
        if let isService { o["is_service"] = .bool(isService) }
        return .object(o)
    }

    public init(wire j: JSONValue) throws {
        guard let id = j.wireInt("id") else { throw WireDecodingError("user without an id: \(j.jsonString.prefix(200))") }
        var roles: [RoleListing]?
        if case .array(let items)? = j["roles"] { roles = try items.map(RoleListing.init(wire:)) }
        var isService: Bool?
        if case .bool(let b)? = j["is_service"] { isService = b }
        self.init(
            id: id, username: try j.wireString("username", in: "user"), isAdmin: j["is_admin"] == .bool(true), isService: isService,
            roles: roles)
    }
}

/// A user's membership of a role, as `roles/users/list` answers it.
public struct RoleAssignment: Sendable, Equatable {
    public var userID: Int64
    public var roleID: Int64

    public init(userID: Int64, roleID: Int64) {
        self.userID = userID
        self.roleID = roleID
    }

    /// The id MLflow gives an assignment: unique per (role, user).
    public var id: Int64 { roleID << 32 | userID }

    public var json: JSONValue { ["id": .int(id), "user_id": .int(userID), "role_id": .int(roleID)] }

    public init(wire j: JSONValue) throws {
        guard let user = j.wireInt("user_id"), let role = j.wireInt("role_id") else {
            throw WireDecodingError("role assignment without user_id or role_id: \(j.jsonString.prefix(200))")
        }
        self.init(userID: user, roleID: role)
    }
}

extension AccessToken {
    public init(wire j: JSONValue) throws {
        self.init(
            id: try j.wireString("id", in: "token"), userID: j.wireInt("user_id") ?? 0, username: j.wireOptionalString("username") ?? "",
            name: j.wireOptionalString("name") ?? "", createdTime: j.wireInt("created_time") ?? 0, expiresTime: j.wireInt("expires_time"),
            lastUsedTime: j.wireInt("last_used_time"), revoked: j["revoked"] == .bool(true))
    }
}

/// A token just made: its record and its secret, which the server shows this once.
public struct CreatedToken: Sendable, Equatable {
    public var token: AccessToken
    public var secret: String

    public init(token: AccessToken, secret: String) {
        self.token = token
        self.secret = secret
    }

    public var json: JSONValue { ["token": token.json, "secret": .string(secret)] }

    public init(wire j: JSONValue) throws {
        guard let token = j["token"] else { throw WireDecodingError("created token without its record") }
        self.init(token: try AccessToken(wire: token), secret: try j.wireString("secret", in: "created token"))
    }
}

/// Who the server takes the caller to be (`GET /api/reprise/v1/whoami`). With authentication off,
/// `authenticated` and `authEnabled` are false and `username` is the name writes are recorded under.
public struct WhoAmI: Sendable, Equatable {
    public var authenticated: Bool
    public var authEnabled: Bool
    public var username: String
    public var isAdmin: Bool
    public var isService: Bool
    /// How the caller proved who they are (`basic`, `token`, `oidc`, `session`); nil when not signed in.
    public var method: String?
    public var groups: [String]
    /// The public id of the token used, if any (never the secret).
    public var tokenID: String?

    public init(
        authenticated: Bool, authEnabled: Bool, username: String, isAdmin: Bool = false, isService: Bool = false, method: String? = nil,
        groups: [String] = [], tokenID: String? = nil
    ) {
        self.authenticated = authenticated
        self.authEnabled = authEnabled
        self.username = username
        self.isAdmin = isAdmin
        self.isService = isService
        self.method = method
        self.groups = groups
        self.tokenID = tokenID
    }

    public init(_ p: Principal) {
        self.init(
            authenticated: true, authEnabled: true, username: p.username, isAdmin: p.isAdmin, isService: p.isService,
            method: p.method.rawValue, groups: p.groups, tokenID: p.tokenID)
    }

    public var json: JSONValue {
        guard authenticated else {
            return ["authenticated": false, "username": .string(username), "auth_enabled": .bool(authEnabled)]
        }
        var o = JSONObject([
            ("authenticated", true), ("auth_enabled", .bool(authEnabled)), ("username", .string(username)), ("is_admin", .bool(isAdmin)),
            ("is_service", .bool(isService)), ("method", .string(method ?? "")), ("groups", .array(groups.map(JSONValue.string))),
        ])
        if let tokenID { o["token_id"] = .string(tokenID) }
        return .object(o)
    }

    public init(wire j: JSONValue) throws {
        self.init(
            authenticated: j["authenticated"] == .bool(true), authEnabled: j["auth_enabled"] == .bool(true),
            username: j.wireOptionalString("username") ?? "", isAdmin: j["is_admin"] == .bool(true), isService: j["is_service"] == .bool(true),
            method: j.wireOptionalString("method"), groups: j.wireArray("groups").compactMap(\.stringValue),
            tokenID: j.wireOptionalString("token_id"))
    }
}
