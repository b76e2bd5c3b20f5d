import RepriseCore

/// Users, roles (groups), grants and access tokens, in the same database as the rest of the store
/// (or, with the auth config's `database_uri`, in a store of their own). Every change is audited.
extension SQLTrackingStore: IdentityStore {
    static let userColumns = "id, username, is_admin, is_service, can_act_as, password_hash, generation, external_subject"

    static func userAccount(_ row: SQLRow) -> UserAccount {
        var u = UserAccount(
            id: row.int(0), username: row.string(1), isAdmin: row.int(2) == 1, isService: row.int(3) == 1, canActAs: row.int(4) == 1,
            passwordHash: row.string(5), generation: row.int(6))
        u.externalSubject = row.string(7)
        return u
    }

    static func requireUser(_ db: any SQLConnection, _ username: String) async throws -> UserAccount {
        guard let row = try await db.queryOne("SELECT \(userColumns) FROM auth_users WHERE username = ?", [.text(username)]) else {
            throw RepriseError.notFound("User with username=\(username) not found")
        }
        return userAccount(row)
    }

    static func validateUsername(_ username: String) throws {
        if username.isEmpty { throw RepriseError.invalid("Username cannot be empty.") }
        // Approver lists spell groups `group:<name>` and departed members `deleted:<name>#<id>`;
        // a user named either way could be mistaken for one.
        if username.hasPrefix(AliasPolicy.groupPrefix) || username.hasPrefix(AliasPolicy.deletedPrefix) {
            throw RepriseError.invalid("A user name cannot start with '\(AliasPolicy.groupPrefix)' or '\(AliasPolicy.deletedPrefix)'.")
        }
        if username.utf8.count > 255 { throw RepriseError.invalid("Username is longer than 255 bytes.") }
        try Validation.rejectControlCharacters(username, field: "username")
    }

    public func createUser(username: String, passwordHash: String, isAdmin: Bool, isService: Bool, canActAs: Bool) async throws -> UserAccount {
        try Self.validateUsername(username)
        return try await write { db, audit in
            if try await db.queryOne("SELECT id FROM auth_users WHERE username = ?", [.text(username)]) != nil {
                throw RepriseError(.resourceAlreadyExists, "User '\(username)' already exists")
            }
            let id = try await Self.nextID(db, .authUsers)
            try await db.execute(
                "INSERT INTO auth_users (id, username, password_hash, is_admin, is_service, can_act_as, generation, created_time) VALUES (?, ?, ?, ?, ?, ?, 1, ?)",
                [.int(id), .text(username), .text(passwordHash), .int(isAdmin ? 1 : 0), .int(isService ? 1 : 0), .int(canActAs ? 1 : 0),
                 .int(Self.now())])
            try await audit.record(
                db, isService ? "service_account.create" : "user.create", "user", username,
                ["is_admin": .bool(isAdmin), "can_act_as": .bool(canActAs)])
            return try await Self.requireUser(db, username)
        }
    }

    public func user(named username: String) async throws -> UserAccount? {
        try await read { db in
            try await db.queryOne("SELECT \(Self.userColumns) FROM auth_users WHERE username = ?", [.text(username)]).map(Self.userAccount)
        }
    }

    public func user(id: Int64) async throws -> UserAccount? {
        try await read { db in
            try await db.queryOne("SELECT \(Self.userColumns) FROM auth_users WHERE id = ?", [.int(id)]).map(Self.userAccount)
        }
    }

    public func users() async throws -> [UserAccount] {
        try await read { db in
            try await db.query("SELECT \(Self.userColumns) FROM auth_users ORDER BY username", []).map(Self.userAccount)
        }
    }

    public func updateUser(username: String, passwordHash: String?, isAdmin: Bool?) async throws {
        try await write { db, audit in
            let user = try await Self.requireUser(db, username)
            if let passwordHash {
                try await db.execute(
                    "UPDATE auth_users SET password_hash = ?, generation = generation + 1 WHERE id = ?", [.text(passwordHash), .int(user.id)])
                try await audit.record(db, "user.update_password", "user", username)
            }
            if let isAdmin {
                try await db.execute("UPDATE auth_users SET is_admin = ?, generation = generation + 1 WHERE id = ?", [.int(isAdmin ? 1 : 0), .int(user.id)])
                try await audit.record(db, "user.update_admin", "user", username, ["before": .bool(user.isAdmin), "after": .bool(isAdmin)])
            }
        }
    }

    public func endSessions(userID: Int64) async throws {
        try await write { db, _ in
            try await db.execute("UPDATE auth_users SET generation = generation + 1 WHERE id = ?", [.int(userID)])
        }
    }

    public func deleteUser(username: String) async throws {
        try await write { db, audit in
            let user = try await Self.requireUser(db, username)
            try await db.execute("DELETE FROM auth_users WHERE id = ?", [.int(user.id)])
            try await db.execute("DELETE FROM auth_role_members WHERE user_id = ?", [.int(user.id)])
            try await db.execute("DELETE FROM auth_grants WHERE holder_type = 'user' AND holder_id = ?", [.int(user.id)])
            try await db.execute("UPDATE auth_tokens SET revoked = 1 WHERE user_id = ?", [.int(user.id)])
            try await Self.rewriteApprovers(db, audit, from: username, to: AliasPolicy.departed(username, id: user.id), reason: "user \(username) deleted")
            try await audit.record(db, "user.delete", "user", username)
        }
    }

    public func provisionExternalUser(username: String, subject: String) async throws -> UserAccount {
        @Sendable func checked(_ u: UserAccount) throws -> UserAccount {
            guard !subject.isEmpty, u.externalSubject == subject else {
                throw RepriseError(
                    .init(rawValue: "UNAUTHENTICATED"),
                    "User '\(username)' exists and is not the single sign-on subject \(subject); a token does not take over an account of the same name.")
            }
            return u
        }
        if let existing = try await user(named: username) { return try checked(existing) }
        try Self.validateUsername(username)
        return try await write { db, audit in
            if let row = try await db.queryOne("SELECT \(Self.userColumns) FROM auth_users WHERE username = ?", [.text(username)]) {
                return try checked(Self.userAccount(row))
            }
            let id = try await Self.nextID(db, .authUsers)
            try await db.execute(
                "INSERT INTO auth_users (id, username, password_hash, is_admin, is_service, can_act_as, generation, created_time, external_subject) VALUES (?, ?, '', 0, 0, 0, 1, ?, ?)",
                [.int(id), .text(username), .int(Self.now()), .text(subject)])
            try await audit.record(db, "user.provision", "user", username, ["source": "oidc", "subject": .string(subject)])
            return try await Self.requireUser(db, username)
        }
    }

    // MARK: - Roles

    static let roleColumns = "id, name, workspace, description"
    static func role(_ row: SQLRow) -> Role { Role(id: row.int(0), name: row.string(1), workspace: row.string(2), description: row.string(3)) }

    static func requireRole(_ db: any SQLConnection, _ id: Int64) async throws -> Role {
        guard let row = try await db.queryOne("SELECT \(roleColumns) FROM auth_roles WHERE id = ?", [.int(id)]) else {
            throw RepriseError.notFound("Role with id=\(id) not found")
        }
        return role(row)
    }

    public func createRole(name: String, workspace: String, description: String) async throws -> Role {
        if name.isEmpty { throw RepriseError.invalid("Role name cannot be empty.") }
        try Validation.rejectControlCharacters(name, field: "name")
        return try await write { db, audit in
            if try await db.queryOne("SELECT id FROM auth_roles WHERE name = ?", [.text(name)]) != nil {
                throw RepriseError(.resourceAlreadyExists, "Role '\(name)' already exists")
            }
            let id = try await Self.nextID(db, .authRoles)
            try await db.execute(
                "INSERT INTO auth_roles (id, name, workspace, description) VALUES (?, ?, ?, ?)",
                [.int(id), .text(name), .text(workspace), .text(description)])
            try await audit.record(db, "role.create", "role", name, ["workspace": .string(workspace)])
            return try await Self.requireRole(db, id)
        }
    }

    public func role(id: Int64) async throws -> Role { try await read { db in try await Self.requireRole(db, id) } }

    public func role(named name: String) async throws -> Role? {
        try await read { db in try await db.queryOne("SELECT \(Self.roleColumns) FROM auth_roles WHERE name = ?", [.text(name)]).map(Self.role) }
    }

    public func roles() async throws -> [Role] {
        try await read { db in try await db.query("SELECT \(Self.roleColumns) FROM auth_roles ORDER BY name", []).map(Self.role) }
    }

    public func updateRole(id: Int64, name: String?, description: String?) async throws -> Role {
        try await write { db, audit in
            let before = try await Self.requireRole(db, id)
            if let name, name != before.name {
                if name.isEmpty { throw RepriseError.invalid("Role name cannot be empty.") }
                if try await db.queryOne("SELECT id FROM auth_roles WHERE name = ?", [.text(name)]) != nil {
                    throw RepriseError(.resourceAlreadyExists, "Role '\(name)' already exists")
                }
                try await db.execute("UPDATE auth_roles SET name = ? WHERE id = ?", [.text(name), .int(id)])
                try await Self.rewriteApprovers(
                    db, audit, from: AliasPolicy.groupPrefix + before.name, to: AliasPolicy.groupPrefix + name, reason: "group \(before.name) renamed to \(name)")
            }
            if let description { try await db.execute("UPDATE auth_roles SET description = ? WHERE id = ?", [.text(description), .int(id)]) }
            try await audit.record(db, "role.update", "role", before.name, ["name": name.map(JSONValue.string) ?? .null])
            return try await Self.requireRole(db, id)
        }
    }

    public func deleteRole(id: Int64) async throws {
        try await write { db, audit in
            let role = try await Self.requireRole(db, id)
            try await db.execute("DELETE FROM auth_roles WHERE id = ?", [.int(id)])
            try await db.execute("DELETE FROM auth_role_members WHERE role_id = ?", [.int(id)])
            try await db.execute("DELETE FROM auth_grants WHERE holder_type = 'role' AND holder_id = ?", [.int(id)])
            try await Self.rewriteApprovers(
                db, audit, from: AliasPolicy.groupPrefix + role.name, to: AliasPolicy.departed(AliasPolicy.groupPrefix + role.name, id: id),
                reason: "group \(role.name) deleted")
            try await audit.record(db, "role.delete", "role", role.name)
        }
    }

    public func assignRole(userID: Int64, roleID: Int64) async throws {
        try await write { db, audit in
            let role = try await Self.requireRole(db, roleID)
            guard let user = try await db.queryOne("SELECT username FROM auth_users WHERE id = ?", [.int(userID)]) else {
                throw RepriseError.notFound("User with id=\(userID) not found")
            }
            if try await db.queryOne("SELECT 1 FROM auth_role_members WHERE role_id = ? AND user_id = ?", [.int(roleID), .int(userID)]) != nil {
                throw RepriseError(.resourceAlreadyExists, "User '\(user.string(0))' already has role '\(role.name)'")
            }
            try await db.execute("INSERT INTO auth_role_members (role_id, user_id) VALUES (?, ?)", [.int(roleID), .int(userID)])
            try await audit.record(db, "role.assign", "role", role.name, ["user": .string(user.string(0))])
        }
    }

    public func unassignRole(userID: Int64, roleID: Int64) async throws {
        try await write { db, audit in
            let role = try await Self.requireRole(db, roleID)
            let n = try await db.execute("DELETE FROM auth_role_members WHERE role_id = ? AND user_id = ?", [.int(roleID), .int(userID)])
            if n == 0 { throw RepriseError.notFound("User with id=\(userID) does not have role '\(role.name)'") }
            try await audit.record(db, "role.unassign", "role", role.name, ["user_id": .int(userID)])
        }
    }

    public func roles(ofUser userID: Int64) async throws -> [Role] {
        try await read { db in
            try await db.query(
                "SELECT r.id, r.name, r.workspace, r.description FROM auth_roles r JOIN auth_role_members m ON m.role_id = r.id WHERE m.user_id = ? ORDER BY r.name",
                [.int(userID)]
            ).map(Self.role)
        }
    }

    public func members(ofRole roleID: Int64) async throws -> [UserAccount] {
        try await read { db in
            _ = try await Self.requireRole(db, roleID)
            return try await db.query(
                "SELECT u.id, u.username, u.is_admin, u.is_service, u.can_act_as, u.password_hash, u.generation, u.external_subject FROM auth_users u JOIN auth_role_members m ON m.user_id = u.id WHERE m.role_id = ? ORDER BY u.username",
                [.int(roleID)]
            ).map(Self.userAccount)
        }
    }

    // MARK: - Grants

    static let grantColumns = "id, holder_type, holder_id, resource_type, pattern, permission"

    static func grant(_ row: SQLRow) -> Grant {
        Grant(
            id: row.int(0), holder: row.string(1) == "role" ? .role(row.int(2)) : .user(row.int(2)),
            resourceType: ResourceType(rawValue: row.string(3)) ?? .experiment, pattern: row.string(4),
            permission: Permission(rawValue: row.string(5)) ?? .noPermissions)
    }

    static func holderBinds(_ h: Grant.Holder) -> [SQLValue] {
        switch h {
        case .user(let id): return [.text("user"), .int(id)]
        case .role(let id): return [.text("role"), .int(id)]
        }
    }

    static func holderName(_ db: any SQLConnection, _ h: Grant.Holder) async throws -> String {
        switch h {
        case .user(let id):
            guard let row = try await db.queryOne("SELECT username FROM auth_users WHERE id = ?", [.int(id)]) else {
                throw RepriseError.notFound("User with id=\(id) not found")
            }
            return "user:" + row.string(0)
        case .role(let id): return await "group:" + (try requireRole(db, id).name)
        }
    }

    static func requireGrant(_ db: any SQLConnection, _ id: Int64) async throws -> Grant {
        guard let row = try await db.queryOne("SELECT \(grantColumns) FROM auth_grants WHERE id = ?", [.int(id)]) else {
            throw RepriseError.notFound("Permission with id=\(id) not found")
        }
        return grant(row)
    }

    public func grant(_ holder: Grant.Holder, _ type: ResourceType, _ pattern: String, _ permission: Permission, replace: Bool) async throws -> Grant {
        if pattern.isEmpty { throw RepriseError.missing("resource_id") }
        return try await write { db, audit in
            let who = try await Self.holderName(db, holder)
            let key = Self.holderBinds(holder) + [.text(type.rawValue), .text(pattern)]
            if let existing = try await db.queryOne(
                "SELECT id, permission FROM auth_grants WHERE holder_type = ? AND holder_id = ? AND resource_type = ? AND pattern = ?", key)
            {
                guard replace else {
                    throw RepriseError(
                        .resourceAlreadyExists, "Permission on \(type.rawValue) '\(pattern)' for \(who) already exists")
                }
                try await db.execute("UPDATE auth_grants SET permission = ? WHERE id = ?", [.text(permission.rawValue), .int(existing.int(0))])
                try await audit.record(
                    db, "grant.update", type.rawValue, pattern,
                    ["holder": .string(who), "before": .string(existing.string(1)), "after": .string(permission.rawValue)])
                return try await Self.requireGrant(db, existing.int(0))
            }
            let id = try await Self.nextID(db, .authGrants)
            try await db.execute(
                "INSERT INTO auth_grants (id, holder_type, holder_id, resource_type, pattern, permission) VALUES (?, ?, ?, ?, ?, ?)",
                [.int(id)] + key + [.text(permission.rawValue)])
            try await audit.record(db, "grant.create", type.rawValue, pattern, ["holder": .string(who), "permission": .string(permission.rawValue)])
            return try await Self.requireGrant(db, id)
        }
    }

    public func revoke(_ holder: Grant.Holder, _ type: ResourceType, _ pattern: String) async throws {
        try await write { db, audit in
            let who = try await Self.holderName(db, holder)
            let n = try await db.execute(
                "DELETE FROM auth_grants WHERE holder_type = ? AND holder_id = ? AND resource_type = ? AND pattern = ?",
                Self.holderBinds(holder) + [.text(type.rawValue), .text(pattern)])
            if n == 0 { throw RepriseError.notFound("No permission on \(type.rawValue) '\(pattern)' for \(who)") }
            try await audit.record(db, "grant.delete", type.rawValue, pattern, ["holder": .string(who)])
        }
    }

    public func grant(id: Int64) async throws -> Grant { try await read { db in try await Self.requireGrant(db, id) } }

    public func updateGrant(id: Int64, permission: Permission) async throws -> Grant {
        try await write { db, audit in
            let before = try await Self.requireGrant(db, id)
            try await db.execute("UPDATE auth_grants SET permission = ? WHERE id = ?", [.text(permission.rawValue), .int(id)])
            try await audit.record(
                db, "grant.update", before.resourceType.rawValue, before.pattern,
                ["holder": .string(try await Self.holderName(db, before.holder)), "before": .string(before.permission.rawValue),
                 "after": .string(permission.rawValue)])
            return try await Self.requireGrant(db, id)
        }
    }

    public func deleteGrant(id: Int64) async throws {
        try await write { db, audit in
            let before = try await Self.requireGrant(db, id)
            try await db.execute("DELETE FROM auth_grants WHERE id = ?", [.int(id)])
            try await audit.record(
                db, "grant.delete", before.resourceType.rawValue, before.pattern, ["holder": .string(try await Self.holderName(db, before.holder))])
        }
    }

    public func grants(of holder: Grant.Holder) async throws -> [Grant] {
        try await read { db in
            try await db.query(
                "SELECT \(Self.grantColumns) FROM auth_grants WHERE holder_type = ? AND holder_id = ? ORDER BY resource_type, pattern",
                Self.holderBinds(holder)
            ).map(Self.grant)
        }
    }

    public func grants(ofUser userID: Int64, roleIDs: [Int64]) async throws -> [Grant] {
        var sql = "SELECT \(Self.grantColumns) FROM auth_grants WHERE (holder_type = 'user' AND holder_id = ?)"
        var binds: [SQLValue] = [.int(userID)]
        if !roleIDs.isEmpty {
            sql += " OR (holder_type = 'role' AND holder_id IN (\(placeholders(roleIDs.count))))"
            binds += roleIDs.map(SQLValue.int)
        }
        let finalSQL = sql
        let finalBinds = binds
        return try await read { db in try await db.query(finalSQL, finalBinds).map(Self.grant) }
    }

    public func moveGrants(type: ResourceType, from: String, to: String?) async throws {
        try await write { db, audit in
            if let to {
                let n = try await db.execute(
                    "UPDATE auth_grants SET pattern = ? WHERE resource_type = ? AND pattern = ?", [.text(to), .text(type.rawValue), .text(from)])
                if n > 0 { try await audit.record(db, "grant.move", type.rawValue, from, ["to": .string(to), "grants": .int(Int64(n))]) }
            } else {
                let n = try await db.execute("DELETE FROM auth_grants WHERE resource_type = ? AND pattern = ?", [.text(type.rawValue), .text(from)])
                if n > 0 { try await audit.record(db, "grant.drop", type.rawValue, from, ["grants": .int(Int64(n))]) }
            }
        }
    }

    // MARK: - Tokens

    static let tokenColumns =
        "t.id, t.user_id, u.username, t.name, t.created_time, t.expires_time, t.last_used_time, t.revoked, t.secret_hash"

    static func accessToken(_ row: SQLRow) -> AccessToken {
        AccessToken(
            id: row.string(0), userID: row.int(1), username: row.string(2), name: row.string(3), createdTime: row.int(4),
            expiresTime: row.optionalInt(5), lastUsedTime: row.optionalInt(6), revoked: row.int(7) == 1)
    }

    public func createToken(userID: Int64, name: String, secretHash: String, expiresTime: Int64?) async throws -> AccessToken {
        try Validation.rejectControlCharacters(name, field: "name")
        let id = "tok_" + String(Self.newID().prefix(16))
        return try await write { db, audit in
            guard let user = try await db.queryOne("SELECT username FROM auth_users WHERE id = ?", [.int(userID)]) else {
                throw RepriseError.notFound("User with id=\(userID) not found")
            }
            try await db.execute(
                "INSERT INTO auth_tokens (id, user_id, name, secret_hash, created_time, expires_time, last_used_time, revoked) VALUES (?, ?, ?, ?, ?, ?, NULL, 0)",
                [.text(id), .int(userID), .text(name), .text(secretHash), .int(Self.now()), SQLValue(expiresTime)])
            try await audit.record(
                db, "token.create", "token", id,
                ["user": .string(user.string(0)), "name": .string(name), "expires_time": expiresTime.map(JSONValue.int) ?? .null])
            return try await Self.accessToken(
                db.queryOne("SELECT \(Self.tokenColumns) FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE t.id = ?", [.text(id)])!)
        }
    }

    public func token(id: String) async throws -> (AccessToken, secretHash: String)? {
        try await read { db in
            try await db.queryOne("SELECT \(Self.tokenColumns) FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE t.id = ?", [.text(id)])
                .map { (Self.accessToken($0), secretHash: $0.string(8)) }
        }
    }

    public func tokens(userID: Int64?) async throws -> [AccessToken] {
        try await read { db in
            if let userID {
                return try await db.query(
                    "SELECT \(Self.tokenColumns) FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id WHERE t.user_id = ? ORDER BY t.created_time DESC",
                    [.int(userID)]
                ).map(Self.accessToken)
            }
            return try await db.query(
                "SELECT \(Self.tokenColumns) FROM auth_tokens t JOIN auth_users u ON u.id = t.user_id ORDER BY t.created_time DESC", []
            ).map(Self.accessToken)
        }
    }

    public func revokeToken(id: String) async throws {
        try await write { db, audit in
            let n = try await db.execute("UPDATE auth_tokens SET revoked = 1 WHERE id = ? AND revoked = 0", [.text(id)])
            if n == 0 { throw RepriseError.notFound("No active token with id=\(id)") }
            try await audit.record(db, "token.revoke", "token", id)
        }
    }

    public func touchToken(id: String, time: Int64) async throws {
        // Not audited: a usage timestamp, not a change of who may do what.
        try await write { db, _ in
            try await db.execute("UPDATE auth_tokens SET last_used_time = ? WHERE id = ?", [.int(time), .text(id)])
        }
    }

    /// Approver lists name people and groups; they follow the identity, not the name. When a user or
    /// group is deleted its entries become `deleted:<name>#<id>`, which no one matches, so a new
    /// account or group created later under the same name is not an approver (and the rule is not
    /// weakened: the entry still counts towards the named approvers until someone with MANAGE edits
    /// the policy). A renamed group's entries take the new name. Policies, open requests and the
    /// policies open `policy_change` requests would install are all rewritten, in the same
    /// transaction as the change, each with an audit event.
    static func rewriteApprovers(_ db: any SQLConnection, _ audit: Auditor, from old: String, to new: String, reason: String) async throws {
        func rewritten(_ list: [String]) -> [String]? {
            list.contains(old) ? list.map { $0 == old ? new : $0 } : nil
        }
        func encode(_ list: [String]) -> String { JSONValue.array(list.map(JSONValue.string)).jsonString }
        for row in try await db.query("SELECT model, alias, approvers FROM alias_policies", []) {
            guard let list = rewritten(decodeApprovers(row.string(2))) else { continue }
            try await db.execute(
                "UPDATE alias_policies SET approvers = ? WHERE model = ? AND alias = ?", [.text(encode(list)), .text(row.string(0)), .text(row.string(1))])
            try await audit.record(
                db, "alias_policy.approvers", "alias_policy", "\(row.string(0))@\(row.string(1))",
                ["approvers": .array(list.map(JSONValue.string)), "reason": .string(reason)])
        }
        for row in try await db.query("SELECT id, approvers, payload FROM approval_requests WHERE state = 'open'", []) {
            let list = rewritten(decodeApprovers(row.string(1)))
            var payload = (try? JSONValue.parse(row.string(2))) ?? .null
            var payloadChanged = false
            if case .object(var o) = payload, case .object(var set)? = o["set"], case .array(let items)? = set["approvers"],
                let changed = rewritten(items.compactMap(\.stringValue))
            {
                set["approvers"] = .array(changed.map(JSONValue.string))
                o["set"] = .object(set)
                payload = .object(o)
                payloadChanged = true
            }
            guard list != nil || payloadChanged else { continue }
            if let list { try await db.execute("UPDATE approval_requests SET approvers = ? WHERE id = ?", [.text(encode(list)), .text(row.string(0))]) }
            if payloadChanged { try await db.execute("UPDATE approval_requests SET payload = ? WHERE id = ?", [.text(payload.jsonString), .text(row.string(0))]) }
            try await audit.record(db, "approval_request.approvers", "approval_request", row.string(0), ["reason": .string(reason)])
        }
    }
}
