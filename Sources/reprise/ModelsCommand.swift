import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore

/// `reprise models …`: protected aliases, approvals and rollback.
struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Govern registered models: protect aliases, request, approve, reject, roll back.",
        subcommands: [Protect.self, Request.self, Approve.self, Reject.self, Cancel.self, Requests.self, Rollback.self, History.self]
    )

    struct Protect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Protect an alias: moves then need approvals.")
        @OptionGroup var options: ClientOptions
        @Argument(help: "The registered model, or * for every model.") var model: String
        @Argument(help: "The alias, e.g. production.") var alias: String
        @Option(help: "How many approvals a move needs.") var approvals = 1
        @Option(help: "Who may approve (repeatable): a user name, or group:NAME for any member of a group; none means anyone but the requester.")
        var approver: [String] = []
        @Option(help: "Require a metric not to get worse: METRIC[:MARGIN][:lower] (lower = lower is better).")
        var metricNotWorse: [String] = []
        @Flag(help: "Require a run that evaluated the version (a run the prompt was loaded in, or evaluated with) before a move.")
        var requireEvaluation = false
        @Option(help: "Require the evaluation's metric not to get worse than the current version's evaluation: METRIC[:MARGIN][:lower] (implies --require-evaluation).")
        var evaluationMetric: [String] = []
        @Flag(help: "Let rollbacks move the alias without approval.") var rollbackWithoutApproval = false
        @Flag(help: "Changing or deleting this policy later itself needs the policy's approvals.") var guardPolicy = false

        /// `METRIC[:MARGIN][:lower]` as a check of `type`.
        static func comparison(_ type: String, _ spec: String, option: String) throws -> JSONValue {
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard let metric = parts.first, !metric.isEmpty else { throw ValidationError("\(option) needs a metric name: METRIC[:MARGIN][:lower]") }
            let margin = parts.count > 1 && !parts[1].isEmpty ? Double(parts[1]) : 0
            guard let margin, margin.isFinite else { throw ValidationError("\(option) margin must be a number: \(spec)") }
            if parts.count > 2, parts[2] != "lower", parts[2] != "higher" {
                throw ValidationError("\(option): the third part says which way is better, lower or higher: \(spec)")
            }
            return [
                "type": .string(type), "metric": .string(metric), "margin": .double(margin),
                "higher_is_better": .bool(!(parts.count > 2 && parts[2] == "lower")),
            ]
        }

        func run() async throws {
            var checks: [JSONValue] = []
            for spec in metricNotWorse { checks.append(try Self.comparison("metric_not_worse", spec, option: "--metric-not-worse")) }
            for spec in evaluationMetric { checks.append(try Self.comparison("evaluated", spec, option: "--evaluation-metric")) }
            if requireEvaluation && evaluationMetric.isEmpty { checks.append(["type": "evaluated"]) }
            let r = try await runClient {
                try await options.client.call(
                    .PUT, "/api/reprise/v1/alias-policies",
                    body: [
                        "model": .string(model), "alias": .string(alias), "required_approvals": .int(Int64(approvals)),
                        "approvers": .array(approver.map(JSONValue.string)), "checks": .array(checks),
                        "rollback_requires_approval": .bool(!rollbackWithoutApproval),
                        "self_change_requires_approval": .bool(guardPolicy),
                    ])
            }
            if let pending = r["approval_request"] {
                print("The current policy guards itself, so this change waits for approval:\n\(describe(pending))")
                return
            }
            print("Alias '\(alias)' of \(model == "*" ? "every model" : "'\(model)'") is protected: \(approvals) approval(s)\(approver.isEmpty ? "" : " from \(approver.joined(separator: ", "))")\(guardPolicy ? "; changes to this policy need the same approvals" : "").")
        }
    }

    struct Request: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Ask to move an alias to a version.")
        @OptionGroup var options: ClientOptions
        @Argument var model: String
        @Argument var alias: String
        @Argument var version: String
        @Option(name: .shortAndLong, help: "Why this version should get the alias.") var rationale: String

        func run() async throws {
            let r = try await runClient {
                try await options.client.call(
                    .POST, "/api/reprise/v1/approval-requests",
                    body: ["model": .string(model), "alias": .string(alias), "version": .string(version), "rationale": .string(rationale)])
            }
            if let request = r["approval_request"] {
                print(describe(request))
                print("Approvers run: reprise models approve \(request["id"]?.stringValue ?? "ID") -r \"why\"")
            } else {
                print("'\(alias)' is not protected: it now points at version \(version) of '\(model)'.")
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a request (not your own).")
        @OptionGroup var options: ClientOptions
        @Argument var id: String
        @Option(name: .shortAndLong, help: "Why you approve.") var rationale: String
        func run() async throws {
            let r = try await runClient {
                try await options.client.call(.POST, "/api/reprise/v1/approval-requests/\(id)/approve", body: ["rationale": .string(rationale)])
            }
            print(describe(r["approval_request"] ?? r))
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a request; nothing moves.")
        @OptionGroup var options: ClientOptions
        @Argument var id: String
        @Option(name: .shortAndLong, help: "Why you reject.") var rationale: String
        func run() async throws {
            let r = try await runClient {
                try await options.client.call(.POST, "/api/reprise/v1/approval-requests/\(id)/reject", body: ["rationale": .string(rationale)])
            }
            print(describe(r["approval_request"] ?? r))
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel an open request.")
        @OptionGroup var options: ClientOptions
        @Argument var id: String
        @Option(name: .shortAndLong) var rationale: String = ""
        func run() async throws {
            let r = try await runClient {
                try await options.client.call(.POST, "/api/reprise/v1/approval-requests/\(id)/cancel", body: ["rationale": .string(rationale)])
            }
            print(describe(r["approval_request"] ?? r))
        }
    }

    struct Requests: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List approval requests, of one model or of all.", aliases: ["list-requests", "approvals"])
        @OptionGroup var options: ClientOptions
        @Argument(help: "The registered model (or prompt); all when left out.") var modelName: String?
        @Option(help: "The same as the argument, for scripts that name it.") var model: String?
        @Option(help: "open, approved, rejected or cancelled.") var state: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if let modelName, let model, modelName != model {
                throw ValidationError("Name the model once: '\(modelName)' and --model '\(model)' differ.")
            }
        }

        func run() async throws {
            var query: [(String, String)] = []
            if let model = modelName ?? model { query.append(("model", model)) }
            if let state { query.append(("state", state)) }
            let r = try await runClient { try await options.client.call(.GET, "/api/reprise/v1/approval-requests", query: query) }
            if json { return printJSON(r) }
            guard case .array(let items)? = r["approval_requests"], !items.isEmpty else { return print("No approval requests.") }
            print(items.map(describe).joined(separator: "\n\n"))
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move an alias back to its previous version.")
        @OptionGroup var options: ClientOptions
        @Argument var model: String
        @Argument var alias: String
        @Option(name: .shortAndLong, help: "Why.") var rationale: String
        func run() async throws {
            let r = try await runClient {
                try await options.client.call(
                    .POST, "/api/reprise/v1/aliases/rollback",
                    body: ["model": .string(model), "alias": .string(alias), "rationale": .string(rationale)])
            }
            if let request = r["approval_request"] {
                print("The rollback needs approval:")
                print(describe(request))
            } else {
                print("'\(alias)' of '\(model)' is back on version \(r["version"]?.stringValue ?? "?").")
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Everything that happened to a model: its audit events.")
        @OptionGroup var options: ClientOptions
        @Argument var model: String
        @Option(help: "Only this version.") var version: String?
        @Flag(help: "Print JSON Lines.") var json = false
        func run() async throws {
            let entity = version.map { "\(model)/\($0)" } ?? model
            var after: Int64 = 0
            var printed = 0
            while true {
                let r = try await runClient {
                    try await options.client.call(
                        .GET, "/api/reprise/v1/audit/events",
                        query: [("entity_id", entity), ("after_seq", String(after)), ("limit", "1000")])
                }
                guard case .array(let events)? = r["events"], !events.isEmpty else { break }
                for e in events {
                    if json {
                        print(e.jsonString)
                    } else {
                        var millis: Int64 = 0
                        if case .int(let t)? = e["time"] { millis = t }
                        let time = Date(timeIntervalSince1970: Double(millis) / 1000)
                        print("#\(e["seq"]?.jsonString ?? "?")  \(ISO8601DateFormatter().string(from: time))  \(e["actor"]?.stringValue ?? "?")  \(e["action"]?.stringValue ?? "?")  \(e["entity_id"]?.stringValue ?? "")  \(e["summary"]?.jsonString ?? "")")
                    }
                    printed += 1
                }
                guard case .int(let next)? = r["next_after_seq"] else { break }
                after = next
            }
            if printed == 0 && !json { print("No events for '\(entity)'.") }
            // The approvals: who asked, who voted and when (their events are the requests', not the model's).
            let r = try await runClient { try await options.client.call(.GET, "/api/reprise/v1/approval-requests", query: [("model", model)]) }
            guard case .array(var requests)? = r["approval_requests"] else { return }
            if let version { requests = requests.filter { $0["target_version"]?.stringValue == version || $0["target_version"]?.jsonString == version } }
            if json {
                for request in requests { print(JSONValue.object(["approval_request": request]).jsonString) }
            } else if !requests.isEmpty {
                print("\nApproval requests (\(requests.count)):")
                print(requests.map(describe).joined(separator: "\n\n"))
            }
        }
    }
}
