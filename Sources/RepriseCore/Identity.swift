/// A permission level, MLflow's model: `NO_PERMISSIONS` < `READ` < `USE` < `EDIT` < `MANAGE`, and
/// `DENY`, which only role and user grants carry and which wins over any other grant it meets.
public enum Permission: String, Sendable, CaseIterable, Comparable {
    case noPermissions = "NO_PERMISSIONS"
    case read = "READ"
    case use = "USE"
    case edit = "EDIT"
    case manage = "MANAGE"
    case deny = "DENY"

    /// The order of the positive levels; `DENY` sorts lowest, as it grants nothing.
    var rank: Int {
        switch self {
        case .deny: return -1
        case .noPermissions: return 0
        case .read: return 1
        case .use: return 2
        case .edit: return 3
        case .manage: return 4
        }
    }

    public static func < (a: Permission, b: Permission) -> Bool { a.rank < b.rank }

    public func allows(_ capability: Capability) -> Bool {
        switch capability {
        case .read: return rank >= Permission.read.rank
        case .use: return rank >= Permission.use.rank
        case .update: return rank >= Permission.edit.rank
        case .delete, .manage: return rank >= Permission.manage.rank
        }
    }

    /// Parses a wire name; unknown names get MLflow's message.
    public static func parse(_ s: String) throws -> Permission {
        guard let p = Permission(rawValue: s) else {
            throw RepriseError.invalid(
                "Invalid permission '\(s)'. Valid permissions are: ('READ', 'USE', 'EDIT', 'MANAGE', 'NO_PERMISSIONS', 'DENY')")
        }
        return p
    }

    /// The effective level from the grants that match a resource and the server's default (MLflow
    /// 3.17's rule): any `DENY` denies; otherwise the highest grant, never below the default unless
    /// it is `NO_PERMISSIONS`; with no grant, the default.
    public static func effective(_ grants: [Permission], default fallback: Permission) -> Permission {
        guard let highest = grants.max() else { return fallback }
        if grants.contains(.deny) { return .deny }
        if highest == .noPermissions { return .noPermissions }
        return max(highest, fallback)
    }
}

/// What a route needs of a resource.
public enum Capability: String, Sendable {
    case read, use, update, delete, manage
}

/// The kinds of resource a grant can name.
public enum ResourceType: String, Sendable, CaseIterable {
    case experiment
    case registeredModel = "registered_model"
    case prompt
    case workspace

    public static func parse(_ s: String) throws -> ResourceType {
        guard let t = ResourceType(rawValue: s) else {
            throw RepriseError.invalid(
                "Invalid resource_type '\(s)'. Valid types are: \(allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        return t
    }
}

/// How a caller proved who they are.
public enum AuthMethod: String, Sendable {
    case basic, token, oidc, session
}

/// An authenticated caller.
public struct Principal: Sendable, Equatable {
    /// The user's stable id (a row id; OIDC users get one on first sight).
    public var userID: Int64
    public var username: String
    public var isAdmin: Bool
    /// A service account: authenticates only with tokens.
    public var isService: Bool
    /// May name another user in `X-Reprise-Actor` (service accounts only).
    public var canActAs: Bool
    public var method: AuthMethod
    /// The access token used, if any (its public id, never the secret).
    public var tokenID: String?
    /// Group (role) names: the store's memberships and, for OIDC, the groups claim.
    public var groups: [String]
    /// The ids of those groups that exist in the store (grants are held by id).
    public var roleIDs: [Int64]

    public init(
        userID: Int64, username: String, isAdmin: Bool, isService: Bool = false, canActAs: Bool = false,
        method: AuthMethod, tokenID: String? = nil, groups: [String] = [], roleIDs: [Int64] = []
    ) {
        self.roleIDs = roleIDs
        self.userID = userID
        self.username = username
        self.isAdmin = isAdmin
        self.isService = isService
        self.canActAs = canActAs
        self.method = method
        self.tokenID = tokenID
        self.groups = groups
    }
}

/// A user account as the auth endpoints return it (never with a password hash).
public struct UserAccount: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var isAdmin: Bool
    public var isService: Bool
    public var canActAs: Bool
    /// The stored password hash; empty for service accounts and OIDC users.
    public var passwordHash: String
    /// Bumped on every password or admin change, so cached credentials lapse.
    public var generation: Int64
    /// For a user who signs in through single sign-on: `<issuer>|<subject>`; empty otherwise.
    /// A token is mapped to a user only when this matches, never onto a local account that
    /// happens to have the same name.
    public var externalSubject: String = ""

    public init(id: Int64, username: String, isAdmin: Bool, isService: Bool, canActAs: Bool, passwordHash: String, generation: Int64) {
        self.id = id
        self.username = username
        self.isAdmin = isAdmin
        self.isService = isService
        self.canActAs = canActAs
        self.passwordHash = passwordHash
        self.generation = generation
    }
}

/// One grant: a user or a role holds `permission` on resources of `resourceType` matching `pattern`
/// (an id or name, or `*`).
public struct Grant: Sendable, Equatable {
    public enum Holder: Sendable, Equatable {
        case user(Int64)
        case role(Int64)
    }
    public var id: Int64
    public var holder: Holder
    public var resourceType: ResourceType
    public var pattern: String
    public var permission: Permission

    public init(id: Int64, holder: Holder, resourceType: ResourceType, pattern: String, permission: Permission) {
        self.id = id
        self.holder = holder
        self.resourceType = resourceType
        self.pattern = pattern
        self.permission = permission
    }
}

/// A role (Reprise calls it a group): a named set of users that holds grants and can be named as
/// approvers (`group:<name>`).
public struct Role: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var workspace: String
    public var description: String

    public init(id: Int64, name: String, workspace: String, description: String) {
        self.id = id
        self.name = name
        self.workspace = workspace
        self.description = description
    }
}

/// An access token's record; the secret is only ever returned once, at creation.
public struct AccessToken: Sendable, Equatable {
    public var id: String
    public var userID: Int64
    public var username: String
    public var name: String
    public var createdTime: Int64
    public var expiresTime: Int64?
    public var lastUsedTime: Int64?
    public var revoked: Bool

    public init(
        id: String, userID: Int64, username: String, name: String, createdTime: Int64, expiresTime: Int64?, lastUsedTime: Int64?,
        revoked: Bool
    ) {
        self.id = id
        self.userID = userID
        self.username = username
        self.name = name
        self.createdTime = createdTime
        self.expiresTime = expiresTime
        self.lastUsedTime = lastUsedTime
        self.revoked = revoked
    }

    public var json: JSONValue {
        var o = JSONObject([
            ("id", .string(id)), ("name", .string(name)), ("username", .string(username)), ("created_time", .int(createdTime)),
            ("revoked", .bool(revoked)),
        ])
        o["expires_time"] = expiresTime.map(JSONValue.int) ?? .null
        o["last_used_time"] = lastUsedTime.map(JSONValue.int) ?? .null
        return .object(o)
    }
}

/// Users, roles, grants and tokens. Every write is audited and atomic.
public protocol IdentityStore: Sendable {
    func createUser(username: String, passwordHash: String, isAdmin: Bool, isService: Bool, canActAs: Bool) async throws -> UserAccount
    func user(named username: String) async throws -> UserAccount?
    func user(id: Int64) async throws -> UserAccount?
    func users() async throws -> [UserAccount]
    func updateUser(username: String, passwordHash: String?, isAdmin: Bool?) async throws
    func deleteUser(username: String) async throws
    /// Ends every UI session of a user (bumps the generation sessions carry).
    func endSessions(userID: Int64) async throws
    /// The user for a single sign-on subject (`<issuer>|<sub>`), created without a password on
    /// first sight. A user of that name that is not the same subject (a local account, another
    /// subject) is refused, never taken over.
    func provisionExternalUser(username: String, subject: String) async throws -> UserAccount

    func createRole(name: String, workspace: String, description: String) async throws -> Role
    func role(id: Int64) async throws -> Role
    func role(named name: String) async throws -> Role?
    func roles() async throws -> [Role]
    func updateRole(id: Int64, name: String?, description: String?) async throws -> Role
    func deleteRole(id: Int64) async throws
    func assignRole(userID: Int64, roleID: Int64) async throws
    func unassignRole(userID: Int64, roleID: Int64) async throws
    func roles(ofUser userID: Int64) async throws -> [Role]
    func members(ofRole roleID: Int64) async throws -> [UserAccount]

    /// Adds a grant, or replaces the permission of the same holder, type and pattern.
    /// - Parameter replace: false makes an existing grant an error (`RESOURCE_ALREADY_EXISTS`).
    func grant(_ holder: Grant.Holder, _ type: ResourceType, _ pattern: String, _ permission: Permission, replace: Bool) async throws -> Grant
    func revoke(_ holder: Grant.Holder, _ type: ResourceType, _ pattern: String) async throws
    func grant(id: Int64) async throws -> Grant
    func updateGrant(id: Int64, permission: Permission) async throws -> Grant
    func deleteGrant(id: Int64) async throws
    func grants(of holder: Grant.Holder) async throws -> [Grant]
    /// Every grant held by the user or by any of the roles, in one read.
    func grants(ofUser userID: Int64, roleIDs: [Int64]) async throws -> [Grant]
    /// Moves the grants on a registered model to its new name (rename), or drops them (delete: `to` nil).
    func moveGrants(type: ResourceType, from: String, to: String?) async throws

    /// Stores a token's hash; returns its record.
    func createToken(userID: Int64, name: String, secretHash: String, expiresTime: Int64?) async throws -> AccessToken
    func token(id: String) async throws -> (AccessToken, secretHash: String)?
    func tokens(userID: Int64?) async throws -> [AccessToken]
    func revokeToken(id: String) async throws
    func touchToken(id: String, time: Int64) async throws
}
