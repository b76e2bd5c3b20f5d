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
        static func comparison(_ spec: String, option: String) throws -> (metric: String, margin: Double, higherIsBetter: Bool) {
            let parts = spec.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard let metric = parts.first, !metric.isEmpty else { throw ValidationError("\(option) needs a metric name: METRIC[:MARGIN][:lower]") }
            let margin = parts.count > 1 && !parts[1].isEmpty ? Double(parts[1]) : 0
            guard let margin, margin.isFinite else { throw ValidationError("\(option) margin must be a number: \(spec)") }
            if parts.count > 2, parts[2] != "lower", parts[2] != "higher" {
                throw ValidationError("\(option): the third part says which way is better, lower or higher: \(spec)")
            }
            return (metric, margin, !(parts.count > 2 && parts[2] == "lower"))
        }

        func run() async throws {
            var checks: [ApprovalCheck] = []
            for spec in metricNotWorse {
                let c = try Self.comparison(spec, option: "--metric-not-worse")
                checks.append(.metricNotWorse(metric: c.metric, margin: c.margin, higherIsBetter: c.higherIsBetter))
            }
            for spec in evaluationMetric {
                let c = try Self.comparison(spec, option: "--evaluation-metric")
                checks.append(.evaluated(metric: c.metric, margin: c.margin, higherIsBetter: c.higherIsBetter))
            }
            if requireEvaluation && evaluationMetric.isEmpty { checks.append(.evaluated(metric: nil, margin: 0, higherIsBetter: true)) }
            let pending = try await runClient {
                try await options.client.setAliasPolicy(
                    [
                        "model": .string(model), "alias": .string(alias), "required_approvals": .int(Int64(approvals)),
                        "approvers": .array(approver.map(JSONValue.string)), "checks": .array(checks.map(\.json)),
                        "rollback_requires_approval": .bool(!rollbackWithoutApproval),
                        "self_change_requires_approval": .bool(guardPolicy),
                    ])
            }
            if let pending {
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
                try await options.client.requestAliasMove(model: model, alias: alias, version: version, rationale: rationale)
            }
            if let request = r.request {
                print(describe(request))
                print("Approvers run: reprise models approve \(request.id) -r \"why\"")
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
            print(describe(try await runClient { try await options.client.decide(requestID: id, "approve", rationale: rationale) }))
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a request; nothing moves.")
        @OptionGroup var options: ClientOptions
        @Argument var id: String
        @Option(name: .shortAndLong, help: "Why you reject.") var rationale: String
        func run() async throws {
            print(describe(try await runClient { try await options.client.decide(requestID: id, "reject", rationale: rationale) }))
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel an open request.")
        @OptionGroup var options: ClientOptions
        @Argument var id: String
        @Option(name: .shortAndLong) var rationale: String = ""
        func run() async throws {
            print(describe(try await runClient { try await options.client.decide(requestID: id, "cancel", rationale: rationale) }))
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
            let items = try await runClient { try await options.client.approvalRequests(model: modelName ?? model, state: state) }
            if json { return printJSON(["approval_requests": .array(items.map(\.json))]) }
            if items.isEmpty { return print("No approval requests.") }
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
            let r = try await runClient { try await options.client.rollback(model: model, alias: alias, rationale: rationale) }
            if let request = r.request {
                print("The rollback needs approval:")
                print(describe(request))
            } else {
                print("'\(alias)' of '\(model)' is back on version \(r.version ?? "?").")
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
                let page = try await runClient { try await options.client.auditEvents(entityType: nil, entityID: entity, afterSeq: after, limit: 1000) }
                for e in page.events {
                    if json {
                        print(e.json.jsonString)
                    } else {
                        let time = Date(timeIntervalSince1970: Double(e.time) / 1000)
                        print("#\(e.seq)  \(ISO8601DateFormatter().string(from: time))  \(e.actor)  \(e.action)  \(e.entityID)  \(e.summary)")
                    }
                    printed += 1
                }
                guard let next = page.next, !page.events.isEmpty else { break }
                after = next
            }
            if printed == 0 && !json { print("No events for '\(entity)'.") }
            // The approvals: who asked, who voted and when (their events are the requests', not the model's).
            var requests = try await runClient { try await options.client.approvalRequests(model: model) }
            if let version { requests = requests.filter { String($0.targetVersion) == version } }
            if json {
                for request in requests { print(JSONValue.object(["approval_request": request.json]).jsonString) }
            } else if !requests.isEmpty {
                print("\nApproval requests (\(requests.count)):")
                print(requests.map(describe).joined(separator: "\n\n"))
            }
        }
    }
}
