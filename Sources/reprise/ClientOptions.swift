import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore

/// Where the server is and who is calling, shared by the client-side commands.
struct ClientOptions: ParsableArguments {
    @Option(help: "The server, as for the mlflow client (default: $MLFLOW_TRACKING_URI, else http://127.0.0.1:5000).")
    var trackingURI: String = ProcessInfo.processInfo.environment["MLFLOW_TRACKING_URI"] ?? "http://127.0.0.1:5000"

    @Option(help: "Who you are, recorded on every write (default: $REPRISE_ACTOR, else $USER). Not authenticated yet.")
    var actor: String = ProcessInfo.processInfo.environment["REPRISE_ACTOR"] ?? ProcessInfo.processInfo.environment["USER"] ?? "anonymous"

    var client: RepriseClient { RepriseClient(baseURL: trackingURI, actor: actor) }
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
    }
}

func printJSON(_ v: JSONValue) {
    print(v.jsonString)
}

func describe(_ r: JSONValue) -> String {
    let votes: [String]
    if case .array(let items)? = r["votes"] {
        votes = items.map { "    \($0["decision"]?.stringValue ?? "?") by \($0["approver"]?.stringValue ?? "?"): \($0["rationale"]?.stringValue ?? "")" }
    } else {
        votes = []
    }
    var lines = [
        "\(r["id"]?.stringValue ?? "?")  \(r["state"]?.stringValue ?? "?")  \(r["model"]?.stringValue ?? "?")@\(r["alias"]?.stringValue ?? "?") -> version \(r["target_version"]?.stringValue ?? "?") (\(r["kind"]?.stringValue ?? "move"))",
        "  requested by \(r["requester"]?.stringValue ?? "?"): \(r["rationale"]?.stringValue ?? "")",
        "  needs \(r["required_approvals"].map { $0.jsonString } ?? "?") approval(s)",
    ]
    lines += votes
    if let res = r["resolution"]?.stringValue { lines.append("  \(res)") }
    return lines.joined(separator: "\n")
}
