import Foundation
import RepriseCore

/// How the server authenticates and authorizes callers. Read from MLflow's basic-auth INI file
/// (`MLFLOW_AUTH_CONFIG_PATH`, section `[mlflow]`) plus Reprise's own keys (section `[reprise]`)
/// and the server flags that override them.
public struct AuthSettings: Sendable {
    /// Whether every request (but `/health`, `/version`, the UI's static files and login page)
    /// needs credentials.
    public var enabled = false
    /// What a user holds on a resource without a grant (MLflow's `default_permission`).
    public var defaultPermission: Permission = .read
    public var adminUsername = "admin"
    /// Used once, to create the admin when it does not exist. Never logged.
    public var adminPassword: String? = nil
    /// Where users and grants live when not in the main store (`sqlite:///path`).
    public var databaseURI: String? = nil
    /// Bearer JWTs from a single sign-on issuer.
    public var oidc: OIDCSettings? = nil
    /// bcrypt's cost factor (2^cost rounds) for new password hashes.
    public var bcryptCost: UInt8 = 12
    /// How long a verified credential is trusted without checking the store again. Changes made
    /// through this server take effect at once; ones made through another server sharing the
    /// store, within this time.
    public var cacheSeconds: Int = 30
    /// How long a UI session lasts.
    public var sessionSeconds: Int = 12 * 3600

    public init() {}

    /// MLflow's password rule.
    public static let minimumPasswordLength = 12

    /// MLflow's old packaged admin password, which it now refuses; so does Reprise.
    public static let insecureDefaultPassword = "password1234"

    public static func validatePassword(_ password: String) throws {
        if password.isEmpty { throw RepriseError.invalid("Password cannot be empty.") }
        if password.count < minimumPasswordLength {
            throw RepriseError.invalid("Password must be at least \(minimumPasswordLength) characters.")
        }
    }

    /// Reads the INI file, if any, then the environment.
    /// - Parameters:
    ///   - path: the INI file (`MLFLOW_AUTH_CONFIG_PATH`); nil keeps the defaults.
    ///   - environment: for `MLFLOW_AUTH_ADMIN_PASSWORD` and `REPRISE_BCRYPT_COST`.
    public static func load(path: String?, environment: [String: String]) throws -> AuthSettings {
        var s = AuthSettings()
        s.enabled = true
        if let path {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw RepriseError.invalid("Cannot read the auth configuration at \(path) (MLFLOW_AUTH_CONFIG_PATH).")
            }
            let ini = INIFile(text)
            if let v = ini["mlflow", "default_permission"] { s.defaultPermission = try Permission.parse(v) }
            if let v = ini["mlflow", "admin_username"], !v.isEmpty { s.adminUsername = v }
            if let v = ini["mlflow", "admin_password"], !v.isEmpty { s.adminPassword = v }
            if let v = ini["mlflow", "database_uri"], !v.isEmpty { s.databaseURI = v }
            if let issuer = ini["reprise", "oidc_issuer"], !issuer.isEmpty {
                var o = OIDCSettings(issuer: issuer)
                if let v = ini["reprise", "oidc_jwks_uri"], !v.isEmpty { o.jwksURI = v }
                if let v = ini["reprise", "oidc_audience"], !v.isEmpty { o.audience = v }
                if let v = ini["reprise", "oidc_username_claim"], !v.isEmpty { o.usernameClaim = v }
                if let v = ini["reprise", "oidc_groups_claim"], !v.isEmpty { o.groupsClaim = v }
                s.oidc = o
            }
            if let v = ini["reprise", "session_hours"], let h = Int(v), h > 0 { s.sessionSeconds = h * 3600 }
        }
        // As in MLflow, the environment wins over the file even when it is set but empty.
        if let v = environment["MLFLOW_AUTH_ADMIN_USERNAME"], !v.isEmpty { s.adminUsername = v }
        if let v = environment["MLFLOW_AUTH_ADMIN_PASSWORD"] { s.adminPassword = v }
        if let v = environment["REPRISE_BCRYPT_COST"], let c = UInt8(v), (4...31).contains(c) { s.bcryptCost = c }
        if let v = environment["REPRISE_AUTH_CACHE_S"], let c = Int(v), c >= 0 { s.cacheSeconds = c }
        return s
    }
}

/// A single sign-on issuer whose bearer JWTs the server accepts.
public struct OIDCSettings: Sendable {
    /// The `iss` every token must carry.
    public var issuer: String
    /// Where the signing keys are; default: discovered from `<issuer>/.well-known/openid-configuration`.
    public var jwksURI: String? = nil
    /// The `aud` every token must carry (the client id registered for Reprise); nil accepts any.
    public var audience: String? = nil
    /// The claim that names the user; `sub` when the claim is absent.
    public var usernameClaim = "preferred_username"
    /// The claim that lists the user's groups (matched with Reprise groups by name).
    public var groupsClaim = "groups"

    public init(issuer: String) { self.issuer = issuer }
}

/// An INI file: `[section]` headers and `key = value` lines (`:` works too); `;` and `#` start
/// comments. Keys are case-insensitive, as Python's configparser reads them.
struct INIFile {
    private var values: [String: [String: String]] = [:]

    init(_ text: String) {
        var section = ""
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix(";") || line.hasPrefix("#") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { continue }
            let key = line[..<sep].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: sep)...].trimmingCharacters(in: .whitespaces)
            values[section, default: [:]][key] = value
        }
    }

    subscript(section: String, key: String) -> String? { values[section]?[key.lowercased()] }
}
