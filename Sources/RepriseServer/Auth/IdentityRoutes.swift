import Foundation
import Hummingbird
import RepriseCore

/// MLflow's basic-auth endpoints (users, roles, grants; the 3.17 `AuthServiceClient` and the classic
/// per-experiment and per-model permission endpoints of older clients), and Reprise's own: who am
/// I, access tokens, service accounts.
///
/// Reprise's groups are MLflow's roles: one entity, shown to MLflow clients as roles (workspace
/// `default`) and named in approver lists as `group:<name>`.
extension RepriseAPI {
    static let api2 = "/api/2.0/mlflow"
    static let api3 = "/api/3.0/mlflow"

    /// The identity store when authentication is on; a 404 otherwise, as a server without MLflow's
    /// auth app answers.
    func requireIdentities() throws -> any IdentityStore {
        guard let identities, authenticator != nil else {
            throw RepriseError(
                .endpointNotFound, "Authentication is not enabled on this server (start it with --app-name basic-auth).")
        }
        return identities
    }

    /// After a change to users, passwords, roles, memberships or tokens: cached credentials (whose
    /// principals carry admin flags and groups) and cached levels are dropped.
    func identityChanged() {
        authenticator?.invalidate()
        authorizer?.invalidate()
    }

    /// After a change to grants only: cached levels are dropped; verified credentials stay (a grant
    /// changes no principal), so creating an experiment does not send every caller back to bcrypt.
    func grantsChanged() { authorizer?.invalidate() }

    func roleJSON(_ r: Role) async throws -> JSONValue {
        RoleListing(role: r, grants: try await requireIdentities().grants(of: .role(r.id))).json
    }

    /// The caller, or 401 (routes declared `.authenticated` only reach here with auth on when
    /// someone is logged in; this covers a server with auth off).
    func caller() throws -> Principal {
        guard let p = Caller.principal else { throw Authenticator.unauthenticated() }
        return p
    }

    func requireMemberOrAdmin(_ roleID: Int64) throws {
        let p = try caller()
        if !p.isAdmin && !p.roleIDs.contains(roleID) { throw AccessDenied() }
    }

    func requireSelfOrAdmin(_ username: String) throws {
        let p = try caller()
        if !p.isAdmin && p.username != username { throw AccessDenied() }
    }

    func requireUser(_ username: String) async throws -> UserAccount {
        guard let u = try await requireIdentities().user(named: username) else {
            throw RepriseError.notFound("User with username=\(username) not found")
        }
        return u
    }

    static func requireJSONContent(_ call: Call) throws {
        let type = call.request.headers[.contentType]?.lowercased() ?? ""
        if !type.hasPrefix("application/json") { throw RepriseError(.badRequest, "Invalid content type. Must be application/json") }
    }

    /// A resource type and id as the grant endpoints take them.
    static func resource(_ p: Params, idField: String) throws -> (ResourceType, String) {
        let type = try ResourceType.parse(try p.requiredString("resource_type"))
        if type == .workspace {
            throw RepriseError.invalid(
                "resource_type 'workspace' is not supported by the per-user permission convenience APIs. Use role permissions for workspace-wide grants.")
        }
        guard let raw = try p.raw(idField) else { throw RepriseError.missing(idField) }
        let id: String
        switch raw {
        case .string(let s): id = s
        case .int(let i): id = String(i)
        default: throw RepriseError.invalid("Parameter '\(idField)' must be a string.")
        }
        if id.isEmpty { throw RepriseError.missing(idField) }
        return (type, id)
    }

    /// Whether the caller may grant on this resource: admins; for one resource, its managers.
    func requireGrantor(_ type: ResourceType, _ id: String) async throws {
        let p = try caller()
        if p.isAdmin { return }
        guard id != "*", let authorizer, try await authorizer.allows(p, .manage, type, id) else { throw AccessDenied() }
    }

    /// One row per grant the user holds, directly or through a role, as MLflow lists them.
    func permissionRows(_ user: UserAccount) async throws -> [JSONValue] {
        let identities = try requireIdentities()
        var rows: [JSONValue] = []
        for g in try await identities.grants(of: .user(user.id)) {
            rows.append([
                "permission": .string(g.permission.rawValue), "resource_pattern": .string(g.pattern),
                "resource_type": .string(g.resourceType.rawValue), "role_id": .int(0), "role_name": .string("__user_\(user.id)__"),
                "workspace": "default",
            ])
        }
        for r in try await identities.roles(ofUser: user.id) {
            for g in try await identities.grants(of: .role(r.id)) {
                rows.append([
                    "permission": .string(g.permission.rawValue), "resource_pattern": .string(g.pattern),
                    "resource_type": .string(g.resourceType.rawValue), "role_id": .int(r.id), "role_name": .string(r.name),
                    "workspace": .string(r.workspace),
                ])
            }
        }
        return rows
    }

    /// Grants the creator MANAGE on what they just created (MLflow's after-request hook).
    func grantCreator(_ type: ResourceType, _ id: String) async throws {
        guard let identities, let p = Caller.principal else { return }
        _ = try await identities.grant(.user(p.userID), type, id, .manage, replace: true)
        grantsChanged()
    }

    /// Creates the configured admin on first start (authentication on only).
    public func bootstrapIdentity() async throws {
        try await authenticator?.bootstrap()
    }

    func registerIdentity() {
        let a2 = Self.api2
        let a3 = Self.api3

        // MARK: Users
        route(.post, "\(a2)/users/create", access: .admin) { [self] call in
            _ = try requireIdentities()
            try Self.requireJSONContent(call)
            let p = try await call.params()
            let user = try await createPasswordUser(
                username: try p.requiredString("username"), password: try p.requiredString("password"), isAdmin: false)
            return Self.json(["user": UserListing(user).json])
        }
        route(.get, "\(a2)/users/get", access: .authenticated) { [self] call in
            let username = try await call.params().requiredString("username")
            try requireSelfOrAdmin(username)
            return Self.json(["user": UserListing(try await requireUser(username)).json])
        }
        route(.get, "\(a2)/users/current", access: .authenticated) { [self] _ in
            _ = try requireIdentities()
            let p = try caller()
            return Self.json([
                "is_basic_auth": .bool(p.method == .basic),
                "user": UserListing(id: p.userID, username: p.username, isAdmin: p.isAdmin).json,
            ])
        }
        route(.get, "\(a2)/users/list", access: .authenticated) { [self] _ in
            let identities = try requireIdentities()
            let me = try caller()
            var users: [JSONValue] = []
            for u in try await identities.users() {
                var roles: [RoleListing] = []
                if me.isAdmin || me.userID == u.id {
                    for r in try await identities.roles(ofUser: u.id) {
                        roles.append(RoleListing(role: r, grants: try await identities.grants(of: .role(r.id))))
                    }
                }
                users.append(UserListing(id: u.id, username: u.username, isAdmin: u.isAdmin, isService: u.isService, roles: roles).json)
            }
            return Self.json(["users": .array(users)])
        }
        route(.patch, "\(a2)/users/update-password", access: .authenticated) { [self] call in
            let identities = try requireIdentities()
            let p = try await call.params()
            let username = try p.requiredString("username")
            let password = try p.requiredString("password")
            let me = try caller()
            try requireSelfOrAdmin(username)
            let user = try await requireUser(username)
            if me.userID == user.id {
                guard let current = try p.string("current_password"), !current.isEmpty else {
                    throw RepriseError.invalid("Current password is required when changing your own password.")
                }
                guard try await authenticator!.bcryptVerify(current, hash: user.passwordHash) else {
                    throw RepriseError.invalid("Current password does not match.")
                }
                if current == password { throw RepriseError.invalid("New password must differ from the current password.") }
            }
            try AuthSettings.validatePassword(password)
            try await identities.updateUser(username: username, passwordHash: await authenticator!.hashPassword(password), isAdmin: nil)
            identityChanged()
            return Self.json(Self.empty)
        }
        route(.patch, "\(a2)/users/update-admin", access: .admin) { [self] call in
            let identities = try requireIdentities()
            let p = try await call.params()
            let username = try p.requiredString("username")
            guard case .bool(let isAdmin)? = try p.raw("is_admin") else {
                throw RepriseError(.badRequest, "is_admin must be a boolean (true or false).")
            }
            try await identities.updateUser(username: username, passwordHash: nil, isAdmin: isAdmin)
            identityChanged()
            return Self.json(Self.empty)
        }
        route(.delete, "\(a2)/users/delete", access: .admin) { [self] call in
            let identities = try requireIdentities()
            let username = try await call.params().requiredString("username")
            if try caller().username == username {
                throw RepriseError(.badRequest, "Users cannot delete their own account. Ask another admin to delete this user instead.")
            }
            try await identities.deleteUser(username: username)
            identityChanged()
            return Self.json(Self.empty)
        }

        // MARK: Classic per-experiment and per-model grants (clients before 3.14)
        for (kind, type, field, key) in [
            ("experiments", ResourceType.experiment, "experiment_id", "experiment_permission"),
            ("registered-models", ResourceType.registeredModel, "name", "registered_model_permission"),
        ] {
            let access: Access =
                type == .experiment ? .experiment(.manage, .field(field)) : .registeredModel(.manage, .field(field))
            let json: @Sendable (String, Int64, Permission) -> JSONValue = { id, userID, permission in
                [key: [field: .string(id), "user_id": .int(userID), "permission": .string(permission.rawValue)]]
            }
            route(.post, "\(a2)/\(kind)/permissions/create", access: access) { [self] call in
                let identities = try requireIdentities()
                let p = try await call.params()
                let id = try p.requiredString(field)
                if try id == "*" && !caller().isAdmin { throw AccessDenied() }
                let user = try await requireUser(try p.requiredString("username"))
                let permission = try Permission.parse(try p.requiredString("permission"))
                _ = try await identities.grant(.user(user.id), type, id, permission, replace: false)
                grantsChanged()
                return Self.json(json(id, user.id, permission))
            }
            route(.get, "\(a2)/\(kind)/permissions/get", access: access) { [self] call in
                let identities = try requireIdentities()
                let p = try await call.params()
                let id = try p.requiredString(field)
                let user = try await requireUser(try p.requiredString("username"))
                guard let g = try await identities.grants(of: .user(user.id)).first(where: { $0.resourceType == type && $0.pattern == id }) else {
                    throw RepriseError.notFound("Permission on \(type.rawValue) '\(id)' for user \(user.username) not found")
                }
                return Self.json(json(id, user.id, g.permission))
            }
            route(.patch, "\(a2)/\(kind)/permissions/update", access: access) { [self] call in
                let identities = try requireIdentities()
                let p = try await call.params()
                let id = try p.requiredString(field)
                let user = try await requireUser(try p.requiredString("username"))
                let permission = try Permission.parse(try p.requiredString("permission"))
                guard let g = try await identities.grants(of: .user(user.id)).first(where: { $0.resourceType == type && $0.pattern == id }) else {
                    throw RepriseError.notFound("Permission on \(type.rawValue) '\(id)' for user \(user.username) not found")
                }
                _ = try await identities.updateGrant(id: g.id, permission: permission)
                grantsChanged()
                return Self.json(Self.empty)
            }
            route(.delete, "\(a2)/\(kind)/permissions/delete", access: access) { [self] call in
                let identities = try requireIdentities()
                let p = try await call.params()
                let user = try await requireUser(try p.requiredString("username"))
                try await identities.revoke(.user(user.id), type, try p.requiredString(field))
                grantsChanged()
                return Self.json(Self.empty)
            }
        }

        // MARK: Roles (Reprise's groups)
        route(.post, "\(a3)/roles/create", access: .admin) { [self] call in
            let p = try await call.params()
            let role = try await createGroup(
                name: try p.requiredString("name"), description: try p.string("description") ?? "",
                workspace: try p.string("workspace") ?? "default")
            return Self.json(["role": try await roleJSON(role)])
        }
        // A role's members and grants are shown to admins and to its members only.
        route(.get, "\(a3)/roles/get", access: .authenticated) { [self] call in
            let role = try await requireIdentities().role(id: try Self.intParam(try await call.params(), "role_id"))
            try requireMemberOrAdmin(role.id)
            return Self.json(["role": try await roleJSON(role)])
        }
        route(.get, "\(a3)/roles/list", access: .authenticated) { [self] call in
            var out: [JSONValue] = []
            let workspaces = Set(call.query["workspace"] ?? [])
            let me = try caller()
            for r in try await requireIdentities().roles() where workspaces.isEmpty || workspaces.contains(r.workspace) {
                if me.isAdmin || me.roleIDs.contains(r.id) { out.append(try await roleJSON(r)) }
            }
            return Self.json(["roles": .array(out)])
        }
        route(.patch, "\(a3)/roles/update", access: .admin) { [self] call in
            let p = try await call.params()
            let id = try Self.intParam(p, "role_id")
            let name = try p.string("name")
            let description = try p.string("description")
            if name == nil && description == nil {
                throw RepriseError.invalid("At least one of 'name' or 'description' must be provided to update a role.")
            }
            let role = try await requireIdentities().updateRole(id: id, name: name, description: description)
            identityChanged()
            return Self.json(["role": try await roleJSON(role)])
        }
        route(.delete, "\(a3)/roles/delete", access: .admin) { [self] call in
            try await requireIdentities().deleteRole(id: try Self.intParam(try await call.params(), "role_id"))
            identityChanged()
            return Self.json(Self.empty)
        }
        route(.post, "\(a3)/roles/permissions/add", access: .admin) { [self] call in
            let identities = try requireIdentities()
            let p = try await call.params()
            let permission = try Permission.parse(try p.requiredString("permission"))
            let type = try ResourceType.parse(try p.requiredString("resource_type"))
            try Self.validateRoleGrant(type, permission, pattern: try p.requiredString("resource_pattern"))
            let roleID = try Self.intParam(p, "role_id")
            _ = try await identities.role(id: roleID)
            let g = try await identities.grant(.role(roleID), type, try p.requiredString("resource_pattern"), permission, replace: false)
            grantsChanged()
            return Self.json(["role_permission": g.rolePermissionJSON])
        }
        route(.delete, "\(a3)/roles/permissions/remove", access: .admin) { [self] call in
            try await requireIdentities().deleteGrant(id: try Self.intParam(try await call.params(), "role_permission_id"))
            grantsChanged()
            return Self.json(Self.empty)
        }
        route(.get, "\(a3)/roles/permissions/list", access: .authenticated) { [self] call in
            let roleID = try Self.intParam(try await call.params(), "role_id")
            let identities = try requireIdentities()
            _ = try await identities.role(id: roleID)
            try requireMemberOrAdmin(roleID)
            let grants = try await identities.grants(of: .role(roleID))
            return Self.json(["role_permissions": .array(grants.map(\.rolePermissionJSON))])
        }
        route(.patch, "\(a3)/roles/permissions/update", access: .admin) { [self] call in
            let identities = try requireIdentities()
            let p = try await call.params()
            let permission = try Permission.parse(try p.requiredString("permission"))
            let id = try Self.intParam(p, "role_permission_id")
            let before = try await identities.grant(id: id)
            guard case .role(let roleID) = before.holder else { throw RepriseError.notFound("Role permission with id=\(id) not found") }
            try Self.validateRoleGrant(before.resourceType, permission, pattern: before.pattern)
            let g = try await identities.updateGrant(id: id, permission: permission)
            grantsChanged()
            return Self.json(["role_permission": g.rolePermissionJSON])
        }
        route(.post, "\(a3)/roles/assign", access: .admin) { [self] call in
            let p = try await call.params()
            let user = try await requireUser(try p.requiredString("username"))
            let roleID = try Self.intParam(p, "role_id")
            try await requireIdentities().assignRole(userID: user.id, roleID: roleID)
            identityChanged()
            return Self.json(["assignment": RoleAssignment(userID: user.id, roleID: roleID).json])
        }
        route(.delete, "\(a3)/roles/unassign", access: .admin) { [self] call in
            let p = try await call.params()
            let user = try await requireUser(try p.requiredString("username"))
            try await requireIdentities().unassignRole(userID: user.id, roleID: try Self.intParam(p, "role_id"))
            identityChanged()
            return Self.json(Self.empty)
        }
        route(.get, "\(a3)/roles/users/list", access: .admin) { [self] call in
            let roleID = try Self.intParam(try await call.params(), "role_id")
            let members = try await requireIdentities().members(ofRole: roleID)
            return Self.json(["assignments": .array(members.map { RoleAssignment(userID: $0.id, roleID: roleID).json })])
        }
        route(.get, "\(a3)/users/roles/list", access: .authenticated) { [self] call in
            let username = try await call.params().requiredString("username")
            try requireSelfOrAdmin(username)
            let user = try await requireUser(username)
            var out: [JSONValue] = []
            for r in try await requireIdentities().roles(ofUser: user.id) { out.append(try await roleJSON(r)) }
            return Self.json(["roles": .array(out)])
        }

        // MARK: Per-user grants (3.17's AuthServiceClient)
        route(.post, "\(a3)/users/permissions/grant", access: .authenticated) { [self] call in
            let identities = try requireIdentities()
            let p = try await call.params()
            let user = try await requireUser(try p.requiredString("username"))
            let permission = try Permission.parse(try p.requiredString("permission"))
            let (type, id) = try Self.resource(p, idField: "resource_id")
            try Self.validateRoleGrant(type, permission, pattern: id)
            try await requireGrantor(type, id)
            if try await identities.grants(of: .user(user.id)).contains(where: { $0.resourceType == type && $0.pattern == id }) {
                throw RepriseError(
                    .resourceAlreadyExists,
                    "Permission for user=\(user.username) on resource_type=\(type.rawValue), resource_id=\(id) already exists.")
            }
            _ = try await identities.grant(.user(user.id), type, id, permission, replace: false)
            grantsChanged()
            return Self.json(Self.empty)
        }
        route(.post, "\(a3)/users/permissions/revoke", access: .authenticated) { [self] call in
            let identities = try requireIdentities()
            let p = try await call.params()
            let user = try await requireUser(try p.requiredString("username"))
            let (type, id) = try Self.resource(p, idField: "resource_id")
            try await requireGrantor(type, id)
            guard try await identities.grants(of: .user(user.id)).contains(where: { $0.resourceType == type && $0.pattern == id }) else {
                throw RepriseError.notFound(
                    "Permission for user=\(user.username) on resource_type=\(type.rawValue), resource_id=\(id) not found.")
            }
            try await identities.revoke(.user(user.id), type, id)
            grantsChanged()
            return Self.json(Self.empty)
        }
        route(.get, "\(a3)/users/permissions/get", access: .authenticated) { [self] call in
            let p = try await call.params()
            let username = try p.requiredString("username")
            try requireSelfOrAdmin(username)
            let user = try await requireUser(username)
            let (type, id) = try Self.resource(p, idField: "resource_id")
            _ = try requireIdentities()
            guard let authenticator, let authorizer else { throw AccessDenied() }
            let principal = try await authenticator.principal(user, method: .basic)
            let level = try await authorizer.permission(principal, type, id)
            return Self.json(["allowed": .bool(level.allows(.use)), "permission": .string(level.rawValue)])
        }
        route(.get, "\(a3)/users/permissions/list", access: .authenticated) { [self] call in
            let username = try await call.params().requiredString("username")
            try requireSelfOrAdmin(username)
            let user = try await requireUser(username)
            return Self.json(["is_admin": .bool(user.isAdmin), "permissions": .array(try await permissionRows(user))])
        }
        route(.get, "\(a3)/users/current/permissions", access: .authenticated) { [self] _ in
            let me = try caller()
            let user = try await requireUser(me.username)
            return Self.json(["is_admin": .bool(user.isAdmin), "permissions": .array(try await permissionRows(user))])
        }

        // MARK: Reprise: who am I, tokens, service accounts
        let p = Self.extensionPrefix
        route(.get, "\(p)/whoami", access: .authenticated) { call in
            guard let me = Caller.principal else {
                return Self.json(WhoAmI(authenticated: false, authEnabled: false, username: WriteContext.current.actor).json)
            }
            return Self.json(WhoAmI(me).json)
        }
        route(.post, "\(p)/tokens", access: .authenticated) { [self] call in
            _ = try requireIdentities()
            let me = try caller()
            let q = try await call.params()
            var owner = try await requireUser(me.username)
            if let other = try q.string("username"), other != me.username {
                guard me.isAdmin else { throw AccessDenied() }
                owner = try await requireUser(other)
            }
            var days = try q.int64("expires_in_days") ?? 90
            // A token made with a token lives no longer than its parent, so revoking or letting
            // the parent lapse is not outlived by a child minted from it.
            if me.method == .token, let parentID = me.tokenID, let (parent, _) = try await requireIdentities().token(id: parentID),
                let parentExpiry = parent.expiresTime
            {
                let left = max(1, (parentExpiry - Int64(Date().timeIntervalSince1970 * 1000)) / 86_400_000)
                days = days == 0 ? left : min(days, left)
            }
            var seconds = try q.int64("expires_in_seconds")
            if let s = seconds, me.method == .token, let parentID = me.tokenID, let (parent, _) = try await requireIdentities().token(id: parentID),
                let parentExpiry = parent.expiresTime
            {
                seconds = min(s, max(1, (parentExpiry - Int64(Date().timeIntervalSince1970 * 1000)) / 1000))
            }
            let (token, secret) = try await createAccessToken(
                owner: owner, name: try q.string("name") ?? "token", expiresInDays: days, expiresInSeconds: seconds)
            return Self.json(CreatedToken(token: token, secret: secret).json)
        }
        route(.get, "\(p)/tokens", access: .authenticated) { [self] call in
            let identities = try requireIdentities()
            let me = try caller()
            var userID: Int64? = me.userID
            if let other = call.query["username"]?.first, other != me.username {
                guard me.isAdmin else { throw AccessDenied() }
                userID = other == "*" ? nil : try await requireUser(other).id
            }
            return Self.json(["tokens": .array(try await identities.tokens(userID: userID).map(\.json))])
        }
        route(.delete, "\(p)/tokens", access: .authenticated) { [self] call in
            try await revokeAccessToken(id: try await call.params().requiredString("id"), by: try caller())
            return Self.json(Self.empty)
        }
        route(.post, "\(p)/service-accounts", access: .admin) { [self] call in
            let identities = try requireIdentities()
            let q = try await call.params()
            let username = try q.requiredString("username")
            if try await identities.user(named: username) != nil {
                throw RepriseError(.resourceAlreadyExists, "User (username=\(username)) already exists.")
            }
            let user = try await identities.createUser(
                username: username, passwordHash: "", isAdmin: false, isService: true, canActAs: try q.bool("can_act_as") ?? false)
            identityChanged()
            return Self.json(["user": ["id": .int(user.id), "username": .string(user.username), "is_service": true, "can_act_as": .bool(user.canActAs)]])
        }
    }

    static func intParam(_ p: Params, _ field: String) throws -> Int64 {
        guard let raw = try p.raw(field) else { throw RepriseError.missing(field) }
        switch raw {
        case .int(let i): return i
        case .string(let s):
            guard let i = Int64(s) else { throw RepriseError.invalid("Parameter '\(field)' must be an integer. Got: '\(s)'") }
            return i
        default: throw RepriseError.invalid("Parameter '\(field)' must be an integer.")
        }
    }

    /// MLflow's rules for what a grant may say: workspace-wide grants are USE or MANAGE; resource
    /// grants are READ, USE, EDIT, MANAGE or DENY.
    static func validateRoleGrant(_ type: ResourceType, _ permission: Permission, pattern: String) throws {
        if pattern.isEmpty { throw RepriseError.missing("resource_pattern") }
        if type == .workspace {
            guard permission == .use || permission == .manage else {
                throw RepriseError.invalid(
                    "Invalid permission '\(permission.rawValue)' for resource_type='workspace'. Workspace-wide grants accept only: ('MANAGE', 'USE').")
            }
            if pattern != "*" {
                throw RepriseError.invalid(
                    "Invalid resource_pattern '\(pattern)' for resource_type='workspace'. This resource type supports only wildcard ('*') grants.")
            }
        } else if permission == .noPermissions {
            throw RepriseError.invalid(
                "Invalid permission 'NO_PERMISSIONS' for resource_type='\(type.rawValue)'. Resource-level grants accept only: ('DENY', 'EDIT', 'MANAGE', 'READ', 'USE').")
        }
    }
}
