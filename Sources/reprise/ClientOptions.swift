import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore

/// Where the server is and who is calling, shared by the client-side commands.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server, as for the mlflow client (default: $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000).")
    var trackingURI: String = ProcessInfo.processInfo.environment["MLFLOW_TRACKING_URI"] ?? "http://127.0.0.1:5000"

    @Option(
        name: [.customLong("actor"), .customLong("act-as")],
        help: ArgumentHelp(
            "Who your writes are recorded for. With authentication off: the name you claim (default: $REPRISE_ACTOR, else $USER). With it on you are the user your credentials name, and only a service account allowed to act for others may pass this.",
            valueName: "user"))
    var actor: String?

    /// The credentials to send and where they came from. The one place that decides, in the mlflow
    /// client's order: `MLFLOW_TRACKING_USERNAME` and `MLFLOW_TRACKING_PASSWORD` (Basic), else
    /// `MLFLOW_TRACKING_TOKEN` (Bearer), else the token `reprise login` stored for this tracking URI.
    var credentials: (credentials: Credentials, source: String)? {
        if let fromEnv = Credentials.fromEnvironment(ProcessInfo.processInfo.environment) { return fromEnv }
        let store = CredentialStore()
        do {
            guard let entry = try store.entry(for: trackingURI) else { return nil }
            if store.isExposed() {
                warnOnce("\(store.file) holds secrets but others may read it; run: chmod 600 \(store.file)")
            }
            return (.bearer(token: entry.token), "reprise login (\(store.file))")
        } catch {
            warnOnce("ignoring the stored logins: \(error)")
            return nil
        }
    }

    /// The name claimed when authentication is off.
    var claimedActor: String {
        actor ?? ProcessInfo.processInfo.environment["REPRISE_ACTOR"] ?? osUserName() ?? "anonymous"
    }

    /// A client with the resolved credentials. `X-Reprise-Actor` goes only without credentials (a
    /// server with authentication off records the claimed name) or when --act-as was given (a
    /// service account acting for someone); otherwise a server with authentication on would refuse it.
    var client: RepriseClient {
        let resolved = credentials
        return RepriseClient(baseURL: trackingURI, actor: resolved == nil ? claimedActor : actor, credentials: resolved?.credentials)
    }

    /// A client with these credentials instead of the resolved ones, without `X-Reprise-Actor`
    /// (login, logout).
    func client(with credentials: Credentials) -> RepriseClient {
        RepriseClient(baseURL: trackingURI, credentials: credentials)
    }

    /// Who owns what this client creates (the `mlflow.user` tag): --act-as, else the authenticated
    /// user, else the claimed name.
    func ownerName() async -> String {
        if let actor { return actor }
        guard let resolved = credentials else { return claimedActor }
        if let username = resolved.credentials.username { return username }
        if case .bearer(let token) = resolved.credentials, let entry = try? CredentialStore().entry(for: trackingURI), entry.token == token {
            return entry.username
        }
        if let me = try? await client.whoami(), me.authenticated, !me.username.isEmpty { return me.username }
        return claimedActor
    }
}

private final class Warnings: @unchecked Sendable {
    static let shared = Warnings()
    let lock = NSLock()
    var given: Set<String> = []
}

/// Prints a warning to standard error, once per process.
func warnOnce(_ message: String) {
    let w = Warnings.shared
    w.lock.lock()
    let first = w.given.insert(message).inserted
    w.lock.unlock()
    if first { FileHandle.standardError.write(Data("warning: \(message)\n".utf8)) }
}

/// Runs a client call and turns failures into messages that say what to do next.
func runClient<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let e as RepriseError {
        FileHandle.standardError.write(Data("error: \(e.message) [\(e.code.rawValue)]\n".utf8))
        throw ExitCode.failure
    } catch let e as RepriseClientError {
        FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
        throw ExitCode.failure
    } catch let e as CredentialStore.StoreError {
        FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
        throw ExitCode.failure
    } catch let e as CLIError {
        FileHandle.standardError.write(Data("error: \(e.description)\n".utf8))
        throw ExitCode.failure
    }
}

/// A failure of a client command, printed as `error: <description>` by `runClient`.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func printJSON(_ v: JSONValue) {
    print(v.jsonString)
}

/// Milliseconds since the epoch as `2026-12-02T19:28:14Z` (UTC).
func isoTime(_ ms: Int64) -> String {
    ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

func describe(_ r: ApprovalRequest) -> String {
    var lines = [
        "\(r.id)  \(r.state.rawValue)  \(r.model)@\(r.alias) -> version \(r.targetVersion) (\(r.kind))",
        "  requested by \(r.requester) at \(isoTime(r.createdTime)): \(r.rationale)",
        "  needs \(r.requiredApprovals) approval(s)",
    ]
    lines += r.votes.map { "    \($0.decision) by \($0.approver) at \(isoTime($0.time)): \($0.rationale)" }
    if !r.resolution.isEmpty { lines.append("  \(r.resolution)") }
    return lines.joined(separator: "\n")
}

/// The operating-system user, found the way the mlflow client finds it (Python's `getpass.getuser`):
/// LOGNAME, USER, LNAME, USERNAME, then the password database's entry for this process's user.
func osUserName() -> String? {
    let env = ProcessInfo.processInfo.environment
    for name in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let v = env[name], !v.isEmpty { return v }
    }
    guard let entry = getpwuid(getuid()), let name = entry.pointee.pw_name else { return nil }
    let user = String(cString: name)
    return user.isEmpty ? nil : user
}
