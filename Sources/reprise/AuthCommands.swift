import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore

/// Where the stored logins live, for help texts.
private let credentialsPlace = "credentials.json under $REPRISE_CONFIG_DIR, else $XDG_CONFIG_HOME/reprise, else ~/.config/reprise"

/// `reprise login`: sign in once and store an access token for the tracking URI.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Sign in to a server and store an access token for it, like `gh auth login`.",
        discussion: """
            Asks for your user name and password, creates a personal access token with them and stores the token (never \
            the password) for this tracking URI in \(credentialsPlace), readable only by you (0600). Every reprise \
            command then sends it as `Authorization: Bearer`. MLFLOW_TRACKING_USERNAME/PASSWORD and \
            MLFLOW_TRACKING_TOKEN, when set, win over the stored token, as they do for the mlflow client.

            In scripts: printf '%s\\n' "$PASSWORD" | reprise login --username alice --password-stdin
            With a token you already have: printf '%s\\n' "$TOKEN" | reprise login --with-token
            """)

    @OptionGroup var options: ClientOptions
    @Option(help: "Your user name (default: asked).") var username: String?
    @Flag(help: "Read the password from standard input instead of asking.") var passwordStdin = false
    @Flag(help: "Store an access token read from standard input (checked with the server first) instead of signing in with a password.")
    var withToken = false
    @Option(help: "The new token's name (default: reprise-cli@<this host>).") var tokenName: String?
    @Option(help: "Days until the new token expires; 0 means never.") var expiresInDays = 90

    func validate() throws {
        if passwordStdin && withToken { throw ValidationError("--password-stdin and --with-token exclude each other: pick one.") }
        if withToken && (username != nil || tokenName != nil) {
            throw ValidationError("--with-token stores the token as it is: --username and --token-name do not apply.")
        }
        if expiresInDays < 0 { throw ValidationError("--expires-in-days must be 0 (never) or more.") }
    }

    func run() async throws {
        let uri = CredentialStore.key(options.trackingURI)
        let store = CredentialStore()
        try await runClient {
            let previous = try store.entry(for: uri)
            let entry = withToken ? try await tokenLogin(uri) : try await passwordLogin(uri)
            try store.save(entry, for: uri)
            // The previous login's token is replaced: revoke it (with itself), best effort.
            if let previous, previous.token != entry.token {
                try? await options.client(with: .bearer(token: previous.token)).revokeToken(id: previous.tokenID)
            }
            let expires = entry.expiresTime.map { "expires \(day($0))" } ?? "never expires"
            print("Logged in to \(uri) as \(entry.username) (token \(entry.tokenID), \(expires)).")
            if let env = Credentials.fromEnvironment(ProcessInfo.processInfo.environment) {
                warnOnce("\(env.source) is set and wins over the stored token; unset it to use this login")
            }
        }
    }

    /// Signs in with a user name and password and creates a token.
    func passwordLogin(_ uri: String) async throws -> CredentialStore.Entry {
        var user = username ?? ""
        if user.isEmpty { user = try Prompt.line("Username for \(uri): ").trimmingCharacters(in: .whitespaces) }
        guard !user.isEmpty else { throw CLIError("no user name given") }
        let password = passwordStdin ? (Prompt.stdinLines().first ?? "") : try Prompt.secret("Password for \(user): ")
        guard !password.isEmpty else {
            throw CLIError(passwordStdin ? "no password on standard input" : "no password given")
        }
        let client = options.client(with: .basic(username: user, password: password))
        let me = try await checkedWhoami(client, uri, refused: "wrong user name or password for \(uri)")
        let created = try await client.createToken(name: tokenName ?? "reprise-cli@\(hostName())", expiresInDays: expiresInDays)
        let token = created.token
        return CredentialStore.Entry(
            token: created.secret, tokenID: token.id,
            username: [token.username, me.username, user].first { !$0.isEmpty } ?? user,
            expiresTime: token.expiresTime, createdTime: token.createdTime > 0 ? token.createdTime : nowMillis())
    }

    /// Checks a token read from standard input and keeps it.
    func tokenLogin(_ uri: String) async throws -> CredentialStore.Entry {
        let token = (Prompt.stdinLines().first ?? "").trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty else { throw CLIError("no token on standard input: printf '%s\\n' \"$TOKEN\" | reprise login --with-token") }
        let client = options.client(with: .bearer(token: token))
        let me = try await checkedWhoami(client, uri, refused: "the server at \(uri) refused this token (expired, revoked or unknown)")
        let id = me.tokenID ?? Credentials.tokenID(ofSecret: token) ?? "?"
        // The expiry, from the token list (best effort: an OIDC JWT is not in it).
        let listed = (try? await client.tokens())?.first { $0.id == id }
        return CredentialStore.Entry(
            token: token, tokenID: id, username: me.username.isEmpty ? "?" : me.username,
            expiresTime: listed?.expiresTime, createdTime: listed?.createdTime ?? nowMillis())
    }

    /// whoami with these credentials; fails with a message for a refusal, a server with
    /// authentication off, or a server without Reprise's identity API.
    func checkedWhoami(_ client: RepriseClient, _ uri: String, refused: String) async throws -> WhoAmI {
        let me: WhoAmI
        do {
            me = try await client.whoami()
        } catch RepriseClientError.unauthenticated {
            throw CLIError(refused)
        } catch let e as RepriseError where e.code == .endpointNotFound {
            throw notReprise(uri)
        } catch RepriseClientError.status(404, _), RepriseClientError.permissionDenied {
            throw notReprise(uri)
        }
        guard me.authenticated else {
            throw CLIError(
                "authentication is off on \(uri), so there is nothing to log in to; writes are recorded under --actor (default $REPRISE_ACTOR, else $USER). A server turns it on with `reprise server --app-name basic-auth`."
            )
        }
        return me
    }

    func notReprise(_ uri: String) -> CLIError {
        CLIError(
            "\(uri) has no Reprise identity API (is it a stock MLflow server?); set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD instead")
    }
}

/// `reprise logout`: revoke the stored token and forget it.
struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Revoke the token `reprise login` stored for a server and remove it from this machine.",
        discussion: "When the server cannot be reached the token is still removed here, and a warning says how to revoke it later.")

    @OptionGroup var options: ClientOptions

    func run() async throws {
        let uri = CredentialStore.key(options.trackingURI)
        let store = CredentialStore()
        try await runClient {
            guard let entry = try store.entry(for: uri) else {
                let others = try store.entries().map(\.uri)
                print("Not logged in to \(uri); nothing to do." + (others.isEmpty ? "" : " Logged in to: \(others.joined(separator: ", ")) (pass --tracking-uri)."))
                return
            }
            let later = "revoke it later with `reprise tokens revoke \(entry.tokenID)`"
            let outcome: String
            do {
                try await options.client(with: .bearer(token: entry.token)).revokeToken(id: entry.tokenID)
                outcome = "token \(entry.tokenID) revoked"
            } catch RepriseClientError.unauthenticated {
                outcome = "token \(entry.tokenID) had already expired or been revoked"
            } catch RepriseClientError.unreachable(_, let why) {
                let until = entry.expiresTime.map { "until \(day($0))" } ?? "(it never expires)"
                warnOnce("cannot reach \(uri) (\(why)): token \(entry.tokenID) stays valid \(until); \(later)")
                outcome = "the token was not revoked"
            } catch {
                warnOnce("the server did not revoke token \(entry.tokenID): \(error); \(later)")
                outcome = "the token was not revoked"
            }
            try store.remove(for: uri)
            print("Logged out of \(uri) (\(outcome)).")
            if let env = Credentials.fromEnvironment(ProcessInfo.processInfo.environment) {
                warnOnce("\(env.source) is still set, so commands still send those credentials")
            }
        }
    }
}

/// `reprise whoami`: who the server thinks you are.
struct WhoamiCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show who the server takes you for: user, sign-in method, groups, admin.")

    @OptionGroup var options: ClientOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let uri = CredentialStore.key(options.trackingURI)
        let resolved = options.credentials
        try await runClient {
            let me = try await options.client.whoami()
            if json { return printJSON(me.json) }
            let username = me.username.isEmpty ? "?" : me.username
            guard me.authenticated else {
                print("Authentication is off on \(uri): your writes are recorded as '\(username)', the name you claim (--actor, else $REPRISE_ACTOR, else $USER).")
                return
            }
            let groups = me.groups
            var method = me.method ?? "?"
            if let id = me.tokenID { method += " (\(id))" }
            var lines = [
                "username:    \(username)",
                "method:      \(method)",
                "groups:      \(groups.isEmpty ? "(none)" : groups.joined(separator: ", "))",
                "admin:       \(me.isAdmin ? "yes" : "no")",
            ]
            if me.isService { lines.append("service:     yes (a service account)") }
            lines.append("server:      \(uri)")
            if let resolved { lines.append("credentials: \(resolved.source)") }
            print(lines.joined(separator: "\n"))
        }
    }
}

/// `reprise tokens …`: personal and service-account access tokens.
struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "List, create and revoke access tokens (sent as MLFLOW_TRACKING_TOKEN).",
        subcommands: [List.self, Create.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your tokens (admins: anyone's). Secrets are never shown.")
        @OptionGroup var options: ClientOptions
        @Option(help: "Another user's tokens (admins).") var username: String?
        @Flag(help: "Everyone's tokens (admins).") var all = false
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if all && username != nil { throw ValidationError("--all and --username exclude each other.") }
        }

        func run() async throws {
            let mine = try? CredentialStore().entry(for: options.trackingURI)
            try await runClient {
                let tokens = try await options.client.tokens(username: all ? "*" : username)
                if json { return printJSON(["tokens": .array(tokens.map(\.json))]) }
                if tokens.isEmpty { return print("No tokens. Create one: reprise tokens create --name NAME") }
                let now = nowMillis()
                let rows = tokens.map { t -> [String] in
                    var state = t.revoked ? "revoked" : (t.expiresTime.map { $0 <= now } == true ? "expired" : "active")
                    if t.id == mine?.tokenID { state += " (this login)" }
                    return [
                        t.id, t.name, t.username, t.createdTime > 0 ? day(t.createdTime) : "",
                        t.expiresTime.map(day) ?? "never", t.lastUsedTime.map(dayTime) ?? "never", state,
                    ]
                }
                print(table(["ID", "NAME", "USER", "CREATED", "EXPIRES", "LAST USED", "STATE"], rows))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token and print its secret, once.",
            discussion: """
                The secret goes to standard output alone, so it can be piped: reprise tokens create --name ci > ci.token. \
                Use it as MLFLOW_TRACKING_TOKEN or with `reprise login --with-token`. It cannot be shown again.
                """)
        @OptionGroup var options: ClientOptions
        @Option(help: "A name that says where the token is used.") var name = "token"
        @Option(help: "Days until it expires; 0 means never.") var expiresInDays = 90
        @Option(help: "Create it for another user or a service account (admins).") var username: String?
        @Flag(help: "Print the whole answer as JSON (it holds the secret).") var json = false

        func validate() throws {
            if expiresInDays < 0 { throw ValidationError("--expires-in-days must be 0 (never) or more.") }
        }

        func run() async throws {
            try await runClient {
                let created = try await options.client.createToken(name: name, expiresInDays: expiresInDays, username: username)
                if json { return printJSON(created.json) }
                let t = created.token
                let secret = created.secret
                let expires = t.expiresTime.map { "expires \(day($0))" } ?? "never expires"
                FileHandle.standardError.write(Data("""
                    Created token \(t.id) '\(t.name.isEmpty ? name : t.name)' for \(t.username.isEmpty ? "?" : t.username) (\(expires)).
                    Copy the secret below now: it will not be shown again. Use it as MLFLOW_TRACKING_TOKEN.

                    """.utf8))
                print(secret)
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token: it stops working at once.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The token's id (tok_…), or its secret (rpt_…).") var token: String

        func run() async throws {
            let id = Credentials.tokenID(ofSecret: token) ?? token
            try await runClient {
                guard id.hasPrefix("tok_") else { throw CLIError("'\(token)' is not a token id (tok_…); `reprise tokens list` shows them") }
                try await options.client.revokeToken(id: id)
                print("Revoked token \(id).")
                let store = CredentialStore()
                if let mine = try? store.entry(for: options.trackingURI), mine.tokenID == id {
                    try store.remove(for: options.trackingURI)
                    print("It was this machine's login to \(CredentialStore.key(options.trackingURI)); run `reprise login` to sign in again.")
                }
            }
        }
    }
}

func nowMillis() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
