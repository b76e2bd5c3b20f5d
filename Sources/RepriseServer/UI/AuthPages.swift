import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RepriseCore

/// The web UI's identity pages: the login form and logout, the caller's access tokens, and the
/// admin page for users, groups and grants. With authentication off the login page sends a browser
/// to the experiments and the other pages answer 404 (nothing to manage).
extension RepriseAPI {
    // MARK: - Shared with the identity API (IdentityRoutes.swift)

    /// Creates an access token for `owner`, valid for `days` days (0: no expiry), and returns its
    /// record and the secret, which exists nowhere else from now on: show it once.
    /// - Parameter seconds: a lifetime in seconds instead of days (short-lived CI tokens), when given.
    func createAccessToken(
        owner: UserAccount, name: String, expiresInDays days: Int64, expiresInSeconds seconds: Int64? = nil
    ) async throws -> (token: AccessToken, secret: String) {
        let identities = try requireIdentities()
        if name.isEmpty || name.utf8.count > 200 { throw RepriseError.invalid("A token name must be 1 to 200 bytes.") }
        if days < 0 || days > 3650 { throw RepriseError.invalid("expires_in_days must be between 0 (never) and 3650.") }
        if let seconds, seconds < 1 || seconds > 3650 * 86_400 {
            throw RepriseError.invalid("expires_in_seconds must be between 1 and \(3650 * 86_400).")
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let expires: Int64? = seconds.map { now + $0 * 1000 } ?? (days == 0 ? nil : now + days * 86_400_000)
        let (secret, hash) = Authenticator.newTokenSecret()
        let token = try await identities.createToken(userID: owner.id, name: name, secretHash: hash, expiresTime: expires)
        return (token, Authenticator.tokenString(id: token.id, secret: secret))
    }

    /// Revokes a token: its owner's, or any for an admin (403 otherwise).
    func revokeAccessToken(id: String, by me: Principal) async throws {
        let identities = try requireIdentities()
        guard let (token, _) = try await identities.token(id: id) else { throw RepriseError.notFound("No token with id=\(id)") }
        if token.userID != me.userID && !me.isAdmin { throw AccessDenied() }
        try await identities.revokeToken(id: id)
        identityChanged()
    }

    /// Creates a user who signs in with a password (MLflow's rules: a new name, 12 characters or more).
    func createPasswordUser(username: String, password: String, isAdmin: Bool) async throws -> UserAccount {
        let identities = try requireIdentities()
        guard let authenticator else { throw Authenticator.unauthenticated() }
        try AuthSettings.validatePassword(password)
        if try await identities.user(named: username) != nil {
            throw RepriseError(.resourceAlreadyExists, "User (username=\(username)) already exists.")
        }
        let user = try await identities.createUser(
            username: username, passwordHash: await authenticator.hashPassword(password), isAdmin: isAdmin, isService: false, canActAs: false)
        identityChanged()
        return user
    }

    /// Creates a group (an MLflow role), with MLflow's rules for its name.
    func createGroup(name raw: String, description: String, workspace: String = "default") async throws -> Role {
        let name = raw.trimmingCharacters(in: .whitespaces)
        if name.isEmpty { throw RepriseError.invalid("Role name cannot be empty.") }
        if name.hasPrefix("__user_") {
            throw RepriseError.invalid(
                "Role name '\(name)' uses the reserved '__user_' prefix, which is held for the per-user permission representation. Choose a different name.")
        }
        if workspace.isEmpty { throw RepriseError.invalid("Workspace cannot be empty.") }
        let role = try await requireIdentities().createRole(name: name, workspace: workspace, description: description)
        identityChanged()
        return role
    }

    // MARK: - Helpers

    /// The page's CSRF token: the cookie's when this server issued it, else a new one (`isNew`:
    /// the response must set the cookie).
    func csrfToken(_ call: Call) -> (token: String, isNew: Bool) {
        if let existing = Self.cookies(call.request)[Self.csrfCookie], csrfTokens.isValid(existing) { return (existing, false) }
        return (csrfTokens.issue(), true)
    }

    /// Where to go after logging in: `next` when it is a page of this UI (the static prefix, then
    /// `/ui`, then the end, `/` or `?`), else the experiments. It is a path on this server by
    /// construction, never an absolute or scheme-relative URL, so the login form is no open
    /// redirect; bytes outside printable ASCII and backslashes are percent-encoded.
    static func loginTarget(_ next: String?, base: String) -> String {
        let home = base + "/ui/"
        let prefix = base + "/ui"
        guard let next, next.utf8.count <= 4096, next.hasPrefix(prefix) else { return home }
        let after = next.dropFirst(prefix.count)
        guard after.isEmpty || after.hasPrefix("/") || after.hasPrefix("?") else { return home }
        // Back to the login page would be a loop; logout is a form target.
        if after.hasPrefix("/login") || after.hasPrefix("/logout") { return home }
        var out = ""
        for byte in next.utf8 {
            if byte > 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// The session cookie's attributes: a browser sends it to this server only, not to scripts,
    /// not on cross-site subrequests, and only over TLS when the server speaks TLS.
    var sessionCookieAttributes: String { "Path=/; HttpOnly; SameSite=Lax" + (config.tls != nil ? "; Secure" : "") }

    static func field(_ form: [String: [String]], _ name: String) -> String {
        (form[name]?.first ?? "").trimmingCharacters(in: .whitespaces)
    }

    static func int64Field(_ form: [String: [String]], _ name: String) throws -> Int64 {
        let raw = field(form, name)
        guard let v = Int64(raw) else { throw RepriseError.invalid("'\(name)' must be a whole number, got '\(raw)'.") }
        return v
    }

    /// A one-button form that posts `fields` to `action`.
    static func postButton(_ action: String, csrf: String, fields: [(String, String)] = [], label: String, cls: String? = nil) -> HTML {
        var h: HTML = "<form class=\"inline\" method=\"post\" action=\"\(action)\">\(hidden(csrf))"
        for (k, v) in fields { h += "<input type=\"hidden\" name=\"\(k)\" value=\"\(v)\">" }
        let c: HTML = cls.map { " class=\"\($0)\"" } ?? ""
        return h + "<button\(c)>\(label)</button></form>"
    }

    /// The lineage graph without what the caller may not read: runs and logged models of
    /// experiments they may not read, versions and aliases of models they may not read, and
    /// datasets no remaining node connects to. 403 when the root itself is hidden.
    func readableLineage(_ g: LineageGraph) async throws -> LineageGraph {
        guard let authorizer, let me = Caller.principal, !me.isAdmin else { return g }
        func readable(_ n: LineageNode) async -> Bool {
            do {
                switch n.type {
                case "run": return try await callerMay(.read, experiment: try await authorizer.experimentID(ofRun: n.id))
                case "logged_model": return try await callerMay(.read, experiment: try await authorizer.experimentID(ofLoggedModel: n.id))
                case "model_version":
                    guard let slash = n.id.lastIndex(of: "/") else { return false }
                    return try await callerMay(.read, registeredModel: String(n.id[..<slash]))
                case "alias":
                    guard let at = n.id.lastIndex(of: "@") else { return false }
                    return try await callerMay(.read, registeredModel: String(n.id[..<at]))
                case "registered_model": return try await callerMay(.read, registeredModel: n.id)
                case "deployment":
                    guard let deployments else { return false }
                    return try await callerMay(.read, registeredModel: try await deployments.getDeployment(id: n.id).model.name)
                case "incident":
                    guard let deployments else { return false }
                    let d = try await deployments.getDeployment(id: try await deployments.getIncident(id: n.id).deploymentID)
                    return try await callerMay(.read, registeredModel: d.model.name)
                default: return false
                }
            } catch {
                return false
            }
        }
        var keep = Set<String>()
        for n in g.nodes where n.type != "dataset" {
            if await readable(n) { keep.insert(n.key) }
        }
        for n in g.nodes where n.type == "dataset" {
            let connected = g.edges.contains { ($0.from == n.key && keep.contains($0.to)) || ($0.to == n.key && keep.contains($0.from)) }
            if connected { keep.insert(n.key) }
        }
        guard keep.contains(g.root) else { throw AccessDenied() }
        return LineageGraph(
            root: g.root, nodes: g.nodes.filter { keep.contains($0.key) }, edges: g.edges.filter { keep.contains($0.from) && keep.contains($0.to) })
    }

    // MARK: - Pages

    static func loginPage(base: String, csrf: String, next: String, username: String = "", message: String? = nil) -> HTML {
        var body: HTML = "<h1>Sign in</h1>"
        if let message { body += "<p class=\"error\" role=\"alert\" id=\"login-error\">\(message)</p>" }
        body += "<form method=\"post\" action=\"\(base)/ui/login\" id=\"login-form\">\(hidden(csrf))<input type=\"hidden\" name=\"next\" value=\"\(next)\">"
        body += "<p><label>User name <input type=\"text\" name=\"username\" required maxlength=\"200\" autocomplete=\"username\" autofocus value=\"\(username)\"></label></p>"
        body += "<p><label>Password <input type=\"password\" name=\"password\" required autocomplete=\"current-password\"></label></p>"
        body += "<p><button id=\"sign-in\">Sign in</button></p></form>"
        body += "<p class=\"muted\">Scripts and the mlflow client use a password (MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD) or an access token (MLFLOW_TRACKING_TOKEN) instead.</p>"
        return HTML.page("Sign in", base: base, body: body)
    }

    static func tokenStatus(_ t: AccessToken, now: Int64) -> HTML {
        if t.revoked { return "<span class=\"badge bad\">revoked</span>" }
        if let e = t.expiresTime, e <= now { return "<span class=\"badge warn\">expired</span>" }
        return "<span class=\"badge ok\">active</span>"
    }

    /// The tokens table: one row per token, a revoke button on the live ones.
    static func tokensTable(_ tokens: [AccessToken], csrf: String, base: String, showOwner: Bool, from: String) -> HTML {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var header: [HTML] = showOwner ? ["Owner"] : []
        header += ["Name", "ID", "Created", "Expires", "Last used", "Status", ""]
        let rows = tokens.sorted { $0.createdTime > $1.createdTime }.map { t -> [HTML] in
            var row: [HTML] = showOwner ? [HTML(escaping: t.username)] : []
            row += [
                HTML(escaping: t.name), "<code>\(t.id)</code>", HTML(escaping: HTML.time(t.createdTime)),
                t.expiresTime.map { HTML(escaping: HTML.time($0)) } ?? "never", HTML(escaping: t.lastUsedTime.map { HTML.time($0) } ?? "never"),
                tokenStatus(t, now: now),
                t.revoked ? HTML() : postButton("\(base)/ui/tokens/\(HTML.q(t.id))/revoke", csrf: csrf, fields: [("from", from)], label: "Revoke"),
            ]
            return row
        }
        return rows.isEmpty ? "<p class=\"muted\">No tokens yet.</p>" : HTML.table(header, rows)
    }

    func tokensPage(me: Principal, csrf: String, created: (token: AccessToken, secret: String)? = nil) async throws -> Page {
        let identities = try requireIdentities()
        let base = config.staticPrefix
        var body: HTML = "<h1>Access tokens</h1>"
        if let created {
            body += "<div class=\"card\" id=\"new-token-card\" role=\"status\"><strong>New token “\(created.token.name)”</strong>"
            body += "<p>Copy it now: it is shown this once and cannot be shown again.</p>"
            body += "<p><code class=\"secret\" id=\"new-token\">\(created.secret)</code></p>"
            body += "<p class=\"muted\">Use it as <code>MLFLOW_TRACKING_TOKEN</code> (sent as <code>Authorization: Bearer …</code>).</p></div>"
        }
        body += "<p class=\"muted\">Personal access tokens of <strong>\(me.username)</strong>, for scripts and the mlflow client (<code>MLFLOW_TRACKING_TOKEN</code>). A token acts as you, with your permissions.</p>"
        body += Self.tokensTable(try await identities.tokens(userID: me.userID), csrf: csrf, base: base, showOwner: false, from: "tokens")
        body += "<h2>New token</h2><form method=\"post\" action=\"\(base)/ui/tokens\" id=\"new-token-form\">\(Self.hidden(csrf))"
        body += "<label>Name <input type=\"text\" name=\"name\" required maxlength=\"200\" placeholder=\"laptop\"></label> "
        body += "<label>Expires in <input type=\"number\" name=\"expires_in_days\" min=\"0\" max=\"3650\" value=\"90\" required> days</label> "
        body += "<span class=\"muted\">(0: never)</span> <button>Create token</button></form>"
        return ("Tokens", body)
    }

    func adminPage(me: Principal, csrf: String) async throws -> Page {
        let identities = try requireIdentities()
        let base = config.staticPrefix
        let a = "\(base)/ui/admin"
        let users = try await identities.users().sorted { $0.username < $1.username }
        let roles = try await identities.roles().sorted { $0.name < $1.name }
        var members: [Int64: [UserAccount]] = [:]
        var groupsOf: [Int64: [String]] = [:]
        for r in roles {
            let m = try await identities.members(ofRole: r.id).sorted { $0.username < $1.username }
            members[r.id] = m
            for u in m { groupsOf[u.id, default: []].append(r.name) }
        }
        var body: HTML = "<h1>Administration</h1><p><a href=\"#users\">Users</a> · <a href=\"#groups\">Groups</a> · <a href=\"#grants\">Grants</a> · <a href=\"#tokens\">Tokens</a></p>"

        // Users
        body += "<h2 id=\"users\">Users</h2>"
        body += HTML.table(["User", "Kind", "Groups", "Admin", ""], users.map { u -> [HTML] in
            let kind = u.isService ? "service account\(u.canActAs ? " (may act as others)" : "")" : (u.passwordHash.isEmpty ? "single sign-on" : "password")
            let isMe = u.id == me.userID
            var actions = HTML()
            if !isMe {
                actions += Self.postButton("\(a)/users/admin", csrf: csrf, fields: [("username", u.username), ("is_admin", u.isAdmin ? "false" : "true")],
                                           label: u.isAdmin ? "Remove admin" : "Make admin")
                actions += " " + Self.postButton("\(a)/users/delete", csrf: csrf, fields: [("username", u.username)], label: "Delete", cls: "bad")
            } else {
                actions = "<span class=\"muted\">you</span>"
            }
            return [
                "<span data-user=\"\(u.username)\">\(u.username)</span>", HTML(escaping: kind),
                HTML(escaping: (groupsOf[u.id] ?? []).joined(separator: ", ")), u.isAdmin ? "<span class=\"badge ok\">admin</span>" : "", actions,
            ]
        })
        body += "<form method=\"post\" action=\"\(a)/users/create\" id=\"create-user\">\(Self.hidden(csrf))<strong>New user</strong> "
        body += "<label>User name <input type=\"text\" name=\"username\" required maxlength=\"200\" autocomplete=\"off\"></label> "
        body += "<label>Password <input type=\"password\" name=\"password\" required minlength=\"\(AuthSettings.minimumPasswordLength)\" autocomplete=\"new-password\"></label> "
        body += "<label><input type=\"checkbox\" name=\"is_admin\" value=\"true\"> admin</label> <button>Create user</button></form>"

        // Groups
        body += "<h2 id=\"groups\">Groups</h2><p class=\"muted\">Groups are MLflow roles: they hold grants, and approver lists may name them as <code>group:&lt;name&gt;</code>.</p>"
        let userOptions: HTML = users.map { "<option value=\"\($0.username)\">\($0.username)</option>" as HTML }.joined()
        body += roles.isEmpty ? "<p class=\"muted\">No groups yet.</p>" : HTML.table(["Group", "Description", "Members", "Add a member", ""], roles.map { r -> [HTML] in
            let list: HTML = (members[r.id] ?? []).map { u -> HTML in
                "\(u.username) " + Self.postButton("\(a)/groups/remove-member", csrf: csrf, fields: [("role_id", String(r.id)), ("username", u.username)], label: "×")
            }.joined(separator: "<br>")
            let add: HTML = "<form class=\"inline\" method=\"post\" action=\"\(a)/groups/add-member\">\(Self.hidden(csrf))<input type=\"hidden\" name=\"role_id\" value=\"\(r.id)\"><select name=\"username\" aria-label=\"user to add to \(r.name)\">\(userOptions)</select> <button>Add</button></form>"
            return [
                "<span data-group=\"\(r.name)\">\(r.name)</span>", HTML(escaping: r.description), list, add,
                Self.postButton("\(a)/groups/delete", csrf: csrf, fields: [("role_id", String(r.id))], label: "Delete", cls: "bad"),
            ]
        })
        body += "<form method=\"post\" action=\"\(a)/groups/create\" id=\"create-group\">\(Self.hidden(csrf))<strong>New group</strong> "
        body += "<label>Name <input type=\"text\" name=\"name\" required maxlength=\"200\"></label> "
        body += "<label>Description <input type=\"text\" name=\"description\" maxlength=\"1000\"></label> <button>Create group</button></form>"

        // Grants
        body += "<h2 id=\"grants\">Grants</h2><p class=\"muted\">Experiments are named by id, registered models by name; <code>*</code> is every one. DENY wins over any other grant; admins need none.</p>"
        var grantRows: [[HTML]] = []
        func row(_ holder: HTML, _ g: Grant) -> [HTML] {
            [holder, HTML(escaping: g.resourceType.rawValue), "<code>\(g.pattern)</code>", HTML(escaping: g.permission.rawValue),
             Self.postButton("\(a)/grants/delete", csrf: csrf, fields: [("grant_id", String(g.id))], label: "Remove")]
        }
        for u in users {
            for g in try await identities.grants(of: .user(u.id)) { grantRows.append(row("user <strong>\(u.username)</strong>", g)) }
        }
        for r in roles {
            for g in try await identities.grants(of: .role(r.id)) { grantRows.append(row("group <strong>\(r.name)</strong>", g)) }
        }
        body += grantRows.isEmpty ? "<p class=\"muted\">No grants: every user holds the default permission.</p>"
            : HTML.table(["Holder", "Resource type", "Resource", "Permission", ""], grantRows)
        let holders: HTML = users.map { "<option value=\"user:\($0.username)\">user \($0.username)</option>" as HTML }.joined()
            + roles.map { "<option value=\"group:\($0.id)\">group \($0.name)</option>" as HTML }.joined()
        let permissions: HTML = [Permission.read, .use, .edit, .manage, .deny].map { "<option value=\"\($0.rawValue)\">\($0.rawValue)</option>" as HTML }.joined()
        body += "<form method=\"post\" action=\"\(a)/grants/create\" id=\"create-grant\">\(Self.hidden(csrf))<strong>New grant</strong> "
        body += "<label>Holder <select name=\"holder\">\(holders)</select></label> "
        body += "<label>Permission <select name=\"permission\">\(permissions)</select></label> on "
        body += "<label>Type <select name=\"resource_type\"><option value=\"experiment\">experiment</option><option value=\"registered_model\">registered model</option></select></label> "
        body += "<label>Id or name <input type=\"text\" name=\"resource\" required maxlength=\"500\"></label> <button>Grant</button></form>"

        // Tokens
        body += "<h2 id=\"tokens\">Tokens</h2>"
        body += Self.tokensTable(try await identities.tokens(userID: nil), csrf: csrf, base: base, showOwner: true, from: "admin")
        return ("Administration", body)
    }

    // MARK: - Routes

    func registerAuthPages() {
        let base = config.staticPrefix

        // Login and logout.
        route(.get, "/ui/login", access: .open) { [self] call in
            guard let authenticator else { return Self.redirect(base + "/ui/") }
            let next = Self.loginTarget(call.query["next"]?.first, base: base)
            // Signed in already (a live session cookie): on to the page.
            if (try? await authenticator.authenticate(call.request)) != nil { return Self.redirect(next) }
            let (token, isNew) = csrfToken(call)
            return Self.htmlResponse(Self.loginPage(base: base, csrf: token, next: next), csrf: isNew ? token : nil)
        }
        route(.post, "/ui/login", access: .open) { [self] call in
            guard let authenticator, let identities else { return Self.redirect(base + "/ui/") }
            let form: [String: [String]]
            let csrf: String
            switch try await checkedForm(call) {
            case .refused(let response): return response
            case .form(let f, let token): (form, csrf) = (f, token)
            }
            let username = form["username"]?.first ?? ""
            let password = form["password"]?.first ?? ""
            let next = Self.loginTarget(form["next"]?.first, base: base)
            do {
                // The same answer for an unknown name and a wrong password (and about the same time).
                let principal = try await authenticator.verify(username: username, password: password)
                guard let user = try await identities.user(id: principal.userID) else { throw Authenticator.unauthenticated() }
                var response = Self.redirect(next)
                response.headers[.setCookie] = "\(Authenticator.sessionCookie)=\(authenticator.issueSession(for: user)); \(sessionCookieAttributes)"
                return response
            } catch let e as RepriseError where e.code.rawValue == "UNAUTHENTICATED" {
                logger.info("UI login refused", metadata: ["request_id": "\(WriteContext.current.requestID)"])
                return Self.htmlResponse(
                    Self.loginPage(base: base, csrf: csrf, next: next, username: username, message: "Wrong user name or password."),
                    status: .unauthorized)
            }
        }
        route(.post, "/ui/logout", access: .authenticated) { [self] call in
            if case .refused(let response) = try await checkedForm(call) { return response }
            guard authenticator != nil else { return Self.redirect(base + "/ui/") }
            // Logging out ends every session of this user (the cookie carries the user's
            // generation), so a copied cookie stops working too; tokens are unaffected.
            if let identities, let me = Caller.principal, me.method == .session {
                try await identities.endSessions(userID: me.userID)
                identityChanged()
            }
            var response = Self.redirect(base + "/ui/login")
            response.headers[.setCookie] = "\(Authenticator.sessionCookie)=; Max-Age=0; \(sessionCookieAttributes)"
            return response
        }

        // The caller's access tokens. Creating one answers with a page (not a redirect) that
        // shows the secret this once; the page is not cached (no-store).
        route(.get, "/ui/tokens", access: .authenticated, uiPage { [self] _, csrf in
            _ = try requireIdentities()
            return try await tokensPage(me: try caller(), csrf: csrf)
        })
        route(.post, "/ui/tokens", access: .authenticated) { [self] call in
            let form: [String: [String]]
            let csrf: String
            switch try await checkedForm(call) {
            case .refused(let response): return response
            case .form(let f, let token): (form, csrf) = (f, token)
            }
            do {
                let identities = try requireIdentities()
                let me = try caller()
                guard let owner = try await identities.user(id: me.userID) else { throw Authenticator.unauthenticated() }
                let created = try await createAccessToken(
                    owner: owner, name: Self.field(form, "name"), expiresInDays: try Self.int64Field(form, "expires_in_days"))
                let page = try await tokensPage(me: me, csrf: csrf, created: created)
                return Self.htmlResponse(HTML.page(page.title, base: base, body: page.body, csrf: csrf))
            } catch let e as RepriseError where e.code.rawValue != "UNAUTHENTICATED" {
                return Self.formError(e, call: call, base: base, csrf: csrf)
            }
        }
        // /ui/tokens/{id}/revoke: the owner's, or any for an admin.
        route(.post, "/ui/tokens/{token_id}/revoke", access: .authenticated, uiForm { [self] call, form in
            let id = try call.pathParameter("token_id")
            _ = try requireIdentities()
            try await revokeAccessToken(id: id, by: try caller())
            return Self.field(form, "from") == "admin" ? "/ui/admin#tokens" : "/ui/tokens"
        })

        // Administration: users, groups, grants, everyone's tokens.
        route(.get, "/ui/admin", access: .admin, uiPage { [self] _, csrf in
            _ = try requireIdentities()
            return try await adminPage(me: try caller(), csrf: csrf)
        })
        route(.post, "/ui/admin/users/create", access: .admin, uiForm { [self] _, form in
            _ = try requireIdentities()
            let username = Self.field(form, "username")
            if username.isEmpty { throw RepriseError.missing("username") }
            // HTTP Basic cannot carry a colon in the user name.
            if username.contains(":") || username.utf8.count > 200 {
                throw RepriseError.invalid("A user name must be at most 200 bytes, without ':'.")
            }
            _ = try await createPasswordUser(
                username: username, password: form["password"]?.first ?? "", isAdmin: Self.field(form, "is_admin") == "true")
            return "/ui/admin#users"
        })
        route(.post, "/ui/admin/users/delete", access: .admin, uiForm { [self] _, form in
            let identities = try requireIdentities()
            let username = Self.field(form, "username")
            if try caller().username == username {
                throw RepriseError(.badRequest, "Users cannot delete their own account. Ask another admin to delete this user instead.")
            }
            _ = try await requireUser(username)
            try await identities.deleteUser(username: username)
            identityChanged()
            return "/ui/admin#users"
        })
        route(.post, "/ui/admin/users/admin", access: .admin, uiForm { [self] _, form in
            let identities = try requireIdentities()
            let username = Self.field(form, "username")
            // An admin cannot demote themselves here: the last admin would lock everyone out.
            if try caller().username == username {
                throw RepriseError(.badRequest, "You cannot change your own admin flag here. Ask another admin.")
            }
            let isAdmin: Bool
            switch Self.field(form, "is_admin") {
            case "true": isAdmin = true
            case "false": isAdmin = false
            default: throw RepriseError(.badRequest, "is_admin must be true or false.")
            }
            _ = try await requireUser(username)
            try await identities.updateUser(username: username, passwordHash: nil, isAdmin: isAdmin)
            identityChanged()
            return "/ui/admin#users"
        })
        route(.post, "/ui/admin/groups/create", access: .admin, uiForm { [self] _, form in
            _ = try await createGroup(name: Self.field(form, "name"), description: Self.field(form, "description"))
            return "/ui/admin#groups"
        })
        route(.post, "/ui/admin/groups/delete", access: .admin, uiForm { [self] _, form in
            try await requireIdentities().deleteRole(id: try Self.int64Field(form, "role_id"))
            identityChanged()
            return "/ui/admin#groups"
        })
        route(.post, "/ui/admin/groups/add-member", access: .admin, uiForm { [self] _, form in
            let identities = try requireIdentities()
            let user = try await requireUser(Self.field(form, "username"))
            let roleID = try Self.int64Field(form, "role_id")
            _ = try await identities.role(id: roleID)
            try await identities.assignRole(userID: user.id, roleID: roleID)
            identityChanged()
            return "/ui/admin#groups"
        })
        route(.post, "/ui/admin/groups/remove-member", access: .admin, uiForm { [self] _, form in
            let identities = try requireIdentities()
            let user = try await requireUser(Self.field(form, "username"))
            try await identities.unassignRole(userID: user.id, roleID: try Self.int64Field(form, "role_id"))
            identityChanged()
            return "/ui/admin#groups"
        })
        route(.post, "/ui/admin/grants/create", access: .admin, uiForm { [self] _, form in
            let identities = try requireIdentities()
            let holderField = Self.field(form, "holder")
            let holder: Grant.Holder
            if holderField.hasPrefix("user:") {
                holder = .user(try await requireUser(String(holderField.dropFirst(5))).id)
            } else if holderField.hasPrefix("group:"), let id = Int64(holderField.dropFirst(6)) {
                holder = .role(try await identities.role(id: id).id)
            } else {
                throw RepriseError.invalid("Choose a user or a group to grant to.")
            }
            let type = try ResourceType.parse(Self.field(form, "resource_type"))
            guard type == .experiment || type == .registeredModel else {
                throw RepriseError.invalid("Grants here name an experiment or a registered model.")
            }
            let permission = try Permission.parse(Self.field(form, "permission"))
            let resource = Self.field(form, "resource")
            try Self.validateRoleGrant(type, permission, pattern: resource)
            // A grant on something that does not exist is most likely a typo: say so.
            if resource != "*" {
                if type == .experiment { _ = try await store.getExperiment(id: resource) } else { _ = try await registry.getRegisteredModel(name: resource) }
            }
            _ = try await identities.grant(holder, type, resource, permission, replace: true)
            grantsChanged()
            return "/ui/admin#grants"
        })
        route(.post, "/ui/admin/grants/delete", access: .admin, uiForm { [self] _, form in
            try await requireIdentities().deleteGrant(id: try Self.int64Field(form, "grant_id"))
            grantsChanged()
            return "/ui/admin#grants"
        })
    }
}
