import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore

/// `reprise deploy …`: record what was deployed where, resolved to exact versions, and read the
/// history back.
struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Record deployments (model and prompt versions, config, endpoint) and read an environment's history.",
        subcommands: [Record.self, History.self, Current.self, Measure.self])

    static func line(_ d: JSONValue) -> String {
        let model = d["model"]
        var s = "\(d["id"]?.stringValue ?? "")  \(d["environment"]?.stringValue ?? "")  \(model?["name"]?.stringValue ?? "") v\(model?["version"]?.stringValue ?? "")"
        if let alias = model?["alias"]?.stringValue { s += " (@\(alias))" }
        if case .array(let prompts)? = d["prompts"], !prompts.isEmpty {
            s += "  prompts: " + prompts.map { "\($0["name"]?.stringValue ?? "") v\($0["version"]?.stringValue ?? "")" }.joined(separator: ", ")
        }
        if case .int(let t)? = d["deployed_time"] {
            s += "  \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(t) / 1000)))"
        }
        s += "  by \(d["deployed_by"]?.stringValue ?? "?")"
        return s
    }

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a deployment: the model (and prompts) are resolved to the versions their aliases point at now.")
        @OptionGroup var server: ClientOptions
        @Option(name: .long, help: "The environment, such as prod or staging.") var environment: String
        @Option(name: .long, help: "The model: NAME@ALIAS or NAME/VERSION.") var model: String
        @Option(name: .long, help: "A prompt deployed with it: NAME@ALIAS or NAME/VERSION (repeat for several).") var prompt: [String] = []
        @Option(name: .long, help: "Where it serves, such as https://api.example/v1/churn.") var endpoint: String?
        @Option(name: .long, help: "A configuration file deployed with it; stored with its SHA-256.") var config: String?
        @Option(name: .long, help: "Why, in a sentence.") var note: String?
        @Flag(name: .long, help: "Print the deployment as JSON.") var json = false

        func run() async throws {
            var body = JSONObject([("environment", .string(environment)), ("model", .string(model)), ("prompts", .array(prompt.map(JSONValue.string)))])
            if let endpoint { body["endpoint"] = .string(endpoint) }
            if let note { body["note"] = .string(note) }
            if let config {
                guard let data = FileManager.default.contents(atPath: config), let text = String(data: data, encoding: .utf8) else {
                    throw ValidationError("Cannot read the configuration file \(config) as UTF-8 text.")
                }
                body["config"] = .string(text)
            }
            let r = try await runClient { try await server.client.call(.POST, "/api/reprise/v1/deployments", body: .object(body)) }
            guard let d = r["deployment"] else { return }
            if json {
                print(d.jsonString)
                return
            }
            print("recorded \(DeployCommand.line(d))")
            if let previous = d["previous_id"]?.stringValue { print("replaces \(previous); `reprise deploy current --environment \(environment)` shows how to roll back") }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "An environment's deployments, newest first.")
        @OptionGroup var server: ClientOptions
        @Option(name: .long, help: "The environment (all environments when left out).") var environment: String?
        @Option(name: .long, help: "How many to show.") var limit: Int = 20
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            var query = [("max_results", String(limit))]
            if let environment { query.append(("environment", environment)) }
            let r = try await runClient { try await server.client.call(.GET, "/api/reprise/v1/deployments", query: query) }
            if json {
                print((r["deployments"] ?? []).jsonString)
                return
            }
            guard case .array(let items)? = r["deployments"], !items.isEmpty else {
                print("no deployments\(environment.map { " to \($0)" } ?? "")")
                return
            }
            for d in items { print(DeployCommand.line(d)) }
        }
    }

    struct Current: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What an environment runs now, and the deployment a rollback returns to.")
        @OptionGroup var server: ClientOptions
        @Option(name: .long, help: "The environment.") var environment: String
        @Flag(name: .long, help: "Print JSON.") var json = false

        func run() async throws {
            let r = try await runClient {
                try await server.client.call(.GET, "/api/reprise/v1/deployments/current", query: [("environment", environment)])
            }
            if json {
                print(r.jsonString)
                return
            }
            guard let d = r["deployment"] else { return }
            print("current  \(DeployCommand.line(d))")
            guard let p = r["previous"] else {
                print("no earlier deployment to roll back to")
                return
            }
            print("previous \(DeployCommand.line(p))")
            var command = "reprise deploy record --environment \(environment) --model \(p["model"]?["name"]?.stringValue ?? "")/\(p["model"]?["version"]?.stringValue ?? "")"
            if case .array(let prompts)? = p["prompts"] {
                for q in prompts { command += " --prompt \(q["name"]?.stringValue ?? "")/\(q["version"]?.stringValue ?? "")" }
            }
            if let endpoint = p["endpoint"]?.stringValue { command += " --endpoint \(endpoint)" }
            print("to roll back: \(command) --note 'rollback of \(d["id"]?.stringValue ?? "")'")
        }
    }

    struct Measure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Log production measurements against a deployment (KEY=VALUE …).")
        @OptionGroup var server: ClientOptions
        @Argument(help: "The deployment id.") var deployment: String
        @Argument(help: "Measurements, such as latency_ms=120 refusal_rate=0.02.") var values: [String]

        func run() async throws {
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let items = try values.map { kv -> JSONValue in
                guard let eq = kv.firstIndex(of: "="), let v = Double(kv[kv.index(after: eq)...]) else {
                    throw ValidationError("'\(kv)' is not KEY=NUMBER.")
                }
                return .object(JSONObject([("key", .string(String(kv[..<eq]))), ("value", .double(v)), ("timestamp", .int(now))]))
            }
            try await runClient {
                try await server.client.call(.POST, "/api/reprise/v1/deployments/\(RepriseClient.encode(deployment))/measurements", body: ["measurements": .array(items)])
            }
            print("logged \(items.count) measurement(s) against \(deployment)")
        }
    }
}

/// `reprise incident …`: incidents against deployments.
struct IncidentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incident", abstract: "Open, close and list incidents against deployments.",
        subcommands: [Open.self, Close.self, List.self])

    static func line(_ i: JSONValue) -> String {
        "\(i["id"]?.stringValue ?? "")  \(i["status"]?.stringValue ?? "")  deployment \(i["deployment_id"]?.stringValue ?? "")  \(i["note"]?.stringValue ?? "")"
    }

    struct Open: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open an incident against a deployment.")
        @OptionGroup var server: ClientOptions
        @Option(name: .long, help: "The deployment id (see `reprise deploy current`).") var deployment: String
        @Option(name: .long, help: "What happened.") var note: String

        func run() async throws {
            let r = try await runClient {
                try await server.client.call(.POST, "/api/reprise/v1/incidents", body: ["deployment_id": .string(deployment), "note": .string(note)])
            }
            guard let i = r["incident"] else { return }
            print("opened \(IncidentCommand.line(i))")
            print("trace it back: reprise lineage incident:\(i["id"]?.stringValue ?? "")")
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Close an incident with its resolution.")
        @OptionGroup var server: ClientOptions
        @Argument(help: "The incident id.") var incident: String
        @Option(name: .long, help: "How it was resolved.") var resolution: String

        func run() async throws {
            let r = try await runClient {
                try await server.client.call(.POST, "/api/reprise/v1/incidents/\(RepriseClient.encode(incident))/close", body: ["resolution": .string(resolution)])
            }
            if let i = r["incident"] { print("closed \(IncidentCommand.line(i))") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Incidents, newest first.")
        @OptionGroup var server: ClientOptions
        @Option(name: .long, help: "Only this environment's.") var environment: String?
        @Option(name: .long, help: "open or closed.") var status: String?

        func run() async throws {
            var query: [(String, String)] = []
            if let environment { query.append(("environment", environment)) }
            if let status { query.append(("status", status)) }
            let r = try await runClient { try await server.client.call(.GET, "/api/reprise/v1/incidents", query: query) }
            guard case .array(let items)? = r["incidents"], !items.isEmpty else {
                print("no incidents")
                return
            }
            for i in items { print(IncidentCommand.line(i)) }
        }
    }
}
