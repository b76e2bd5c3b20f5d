import ArgumentParser
import Foundation
import RepriseClient
import RepriseCore

private let users2 = "/api/2.0/mlflow/users"
private let roles3 = "/api/3.0/mlflow/roles"

/// `reprise users …`: accounts on a server with authentication on (MLflow's users endpoints).
struct UsersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "users",
        abstract: "Manage user accounts: list, create (people or service accounts), delete, admin, password.",
        subcommands: [List.self, Create.self, Delete.self, SetAdmin.self, SetPassword.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users (groups are shown to admins).")
        @OptionGroup var options: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await runClient {
                let users = try await options.client.users()
                if json { return printJSON(["users": .array(users.map(\.json))]) }
                if users.isEmpty { return print("No users.") }
                let rows = users.map { u -> [String] in
                    [u.username, u.isAdmin ? "yes" : "no", u.isService == true ? "yes" : "no", u.groupNames.joined(separator: ", ")]
                }
                print(table(["USERNAME", "ADMIN", "SERVICE", "GROUPS"], rows))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user with a password (at least 12 characters), or a service account.",
            discussion: """
                The password is asked twice, or read from standard input with --password-stdin. A service account \
                (--service) has no password: create a token for it with `reprise tokens create --username NAME`. \
                With --can-act-as it may record writes for other users (`--act-as USER`), and both names are audited.
                """)
        @OptionGroup var options: ClientOptions
        @Argument var username: String
        @Flag(help: "Read the password from standard input.") var passwordStdin = false
        @Flag(help: "Make the user an admin.") var admin = false
        @Flag(help: "Create a service account (no password; signs in with tokens).") var service = false
        @Flag(help: "Let the service account act for other users (with --service).") var canActAs = false

        func validate() throws {
            if canActAs && !service { throw ValidationError("--can-act-as applies to service accounts: add --service.") }
            if service && passwordStdin { throw ValidationError("A service account has no password: drop --password-stdin.") }
        }

        func run() async throws {
            try await runClient {
                let client = options.client
                if service {
                    try await client.call(
                        .POST, RepriseClient.identityPrefix + "/service-accounts",
                        body: ["username": .string(username), "can_act_as": .bool(canActAs)])
                    print("Created service account \(username)\(canActAs ? ", allowed to act for other users" : "").")
                } else {
                    let password = passwordStdin ? (Prompt.stdinLines().first ?? "") : try Prompt.newPassword("Password for \(username): ")
                    guard !password.isEmpty else { throw CLIError("no password given") }
                    try await client.call(.POST, "\(users2)/create", body: ["username": .string(username), "password": .string(password)])
                    print("Created user \(username).")
                }
                if admin {
                    try await client.call(.PATCH, "\(users2)/update-admin", body: ["username": .string(username), "is_admin": true])
                    print("\(username) is an admin.")
                }
                if service {
                    print("Give it a token: reprise tokens create --username \(username) --name NAME")
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a user (admins); their tokens stop working.")
        @OptionGroup var options: ClientOptions
        @Argument var username: String
        func run() async throws {
            try await runClient {
                try await options.client.call(.DELETE, "\(users2)/delete", body: ["username": .string(username)])
                print("Deleted user \(username).")
            }
        }
    }

    struct SetAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-admin", abstract: "Make a user an admin, or not (admins).")
        @OptionGroup var options: ClientOptions
        @Argument var username: String
        @Argument(help: "on or off (also true/false, yes/no).") var value: String

        func validate() throws {
            if Self.parse(value) == nil { throw ValidationError("Say on or off, not '\(value)'.") }
        }

        static func parse(_ s: String) -> Bool? {
            switch s.lowercased() {
            case "on", "true", "yes", "1": return true
            case "off", "false", "no", "0": return false
            default: return nil
            }
        }

        func run() async throws {
            let on = Self.parse(value) ?? false
            try await runClient {
                try await options.client.call(.PATCH, "\(users2)/update-admin", body: ["username": .string(username), "is_admin": .bool(on)])
                print(on ? "\(username) is an admin." : "\(username) is no longer an admin.")
            }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password",
            abstract: "Change a password: your own (the current one is needed) or, as an admin, anyone's.",
            discussion: """
                With --password-stdin the first line is the new password and, when you change your own, the second \
                line is the current one. Tokens keep working after a password change; revoke them with `reprise tokens revoke`.
                """)
        @OptionGroup var options: ClientOptions
        @Argument var username: String
        @Flag(help: "Read the new password (and, for your own, the current one on the next line) from standard input.")
        var passwordStdin = false

        func run() async throws {
            try await runClient {
                let resolved = options.credentials
                let client = options.client
                var me = resolved?.credentials.username
                if me == nil, let who = try? await client.whoami(), who.authenticated { me = who.username }
                let own = me == username
                let lines = passwordStdin ? Prompt.stdinLines() : []
                let new = passwordStdin ? (lines.first ?? "") : try Prompt.newPassword("New password for \(username): ")
                guard !new.isEmpty else { throw CLIError("no new password given") }
                var body = JSONObject([("username", .string(username)), ("password", .string(new))])
                if own {
                    let current: String
                    if case .basic(_, let password)? = resolved?.credentials {
                        current = password
                    } else if passwordStdin {
                        guard lines.count > 1, !lines[1].isEmpty else {
                            throw CLIError("changing your own password needs the current one: put it on the second line of standard input")
                        }
                        current = lines[1]
                    } else {
                        current = try Prompt.secret("Current password: ")
                    }
                    body["current_password"] = .string(current)
                }
                try await client.call(.PATCH, "\(users2)/update-password", body: .object(body))
                print("Changed the password of \(username).")
                if own, let source = resolved?.source, resolved?.credentials.username != nil {
                    warnOnce("\(source) still holds the old password; update it")
                }
            }
        }
    }
}

/// Which resources a grant names: `--experiment`, `--model`, or a resource type and pattern.
struct ResourceOptions: ParsableArguments {
    @Option(help: "An experiment id or name, or * for every experiment.") var experiment: String?
    @Option(help: "A registered model name, or * for every model.") var model: String?
    @Option(help: "Another resource type (prompt, workspace, …), with --pattern.") var resourceType: String?
    @Option(help: "The resource id or name for --resource-type, or *.") var pattern: String?

    func validate() throws {
        let given = [experiment != nil, model != nil, resourceType != nil].filter { $0 }.count
        if given != 1 { throw ValidationError("Name one resource: --experiment ID, --model NAME, or --resource-type TYPE --pattern P.") }
        if (resourceType != nil) != (pattern != nil) { throw ValidationError("--resource-type and --pattern go together.") }
    }

    /// The resource type and pattern; an experiment name becomes its id.
    func resolve(_ client: RepriseClient) async throws -> (type: String, pattern: String) {
        if let experiment {
            if experiment == "*" || experiment.allSatisfy(\.isNumber) { return ("experiment", experiment) }
            return ("experiment", try await client.experimentID(named: experiment, create: false))
        }
        if let model { return ("registered_model", model) }
        return (resourceType ?? "", pattern ?? "")
    }
}

/// `reprise groups …`: teams, which are MLflow roles in the default workspace.
struct GroupsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "groups",
        abstract: "Manage groups (MLflow roles): members and the grants they carry.",
        discussion: """
            A group's grants apply to all its members; alias policies may name approvers as group:<name>. \
            Example: reprise groups create ml-leads && reprise groups add-member ml-leads alice bob && \
            reprise groups grant ml-leads MANAGE --model churn
            """,
        subcommands: [List.self, Show.self, Create.self, Delete.self, AddMember.self, RemoveMember.self, Grant.self, Revoke.self])

    static func describeGrant(_ g: RepriseCore.Grant) -> String {
        let type = g.resourceType.rawValue
        let what = g.pattern == "*" ? "every \(type)" : "\(type) \(g.pattern)"
        return "\(g.permission.rawValue) on \(what)"
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the groups and their grants.")
        @OptionGroup var options: ClientOptions
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            try await runClient {
                let groups = try await options.client.groups()
                if json { return printJSON(["groups": .array(groups.map(\.json))]) }
                if groups.isEmpty { return print("No groups. Create one: reprise groups create NAME") }
                let rows = groups.map { g -> [String] in
                    [
                        g.role.name, String(g.role.id), g.grants.map(GroupsCommand.describeGrant).joined(separator: "; "),
                        g.role.description,
                    ]
                }
                print(table(["NAME", "ID", "GRANTS", "DESCRIPTION"], rows))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a group's members and grants.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @Flag(help: "Print JSON.") var json = false
        func run() async throws {
            try await runClient {
                let client = options.client
                let listing = try await client.group(named: group)
                let id = listing.role.id
                let assigned = try await client.members(ofGroup: id)
                let names = Dictionary(try await client.users().map { ($0.id, $0.username) }, uniquingKeysWith: { first, _ in first })
                let members = assigned.map { names[$0.userID] ?? "user \($0.userID)" }.sorted()
                if json {
                    return printJSON(["group": listing.json, "members": .array(members.map(JSONValue.string))])
                }
                let description = listing.role.description
                var lines = ["\(group) (id \(id))" + (description.isEmpty ? "" : ": \(description)")]
                lines.append("members: \(members.isEmpty ? "(none)" : members.joined(separator: ", "))")
                let grants = listing.grants
                lines.append("grants:" + (grants.isEmpty ? " (none)" : ""))
                for g in grants { lines.append("  \(GroupsCommand.describeGrant(g))") }
                print(lines.joined(separator: "\n"))
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a group.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @Option(help: "What the group is for.") var description: String?
        func run() async throws {
            try await runClient {
                var body = JSONObject([("workspace", .string(RepriseClient.groupWorkspace)), ("name", .string(group))])
                if let description { body["description"] = .string(description) }
                let r = try await options.client.call(.POST, "\(roles3)/create", body: .object(body))
                guard let created = r["role"] else { throw RepriseClientError.malformed("role") }
                print("Created group \(group) (id \(try RoleListing(wire: created).role.id)). Add members: reprise groups add-member \(group) USER…")
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a group: its members lose its grants.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        func run() async throws {
            try await runClient {
                let client = options.client
                let id = try await client.groupID(named: group)
                try await client.call(.DELETE, "\(roles3)/delete", body: ["role_id": .int(id)])
                print("Deleted group \(group).")
            }
        }
    }

    struct AddMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add-member", abstract: "Add users to a group.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @Argument(help: "One or more user names.") var users: [String]
        func validate() throws { if users.isEmpty { throw ValidationError("Name at least one user.") } }
        func run() async throws {
            try await runClient {
                let client = options.client
                let id = try await client.groupID(named: group)
                for user in users {
                    try await client.call(.POST, "\(roles3)/assign", body: ["username": .string(user), "role_id": .int(id)])
                    print("Added \(user) to \(group).")
                }
            }
        }
    }

    struct RemoveMember: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove-member", abstract: "Remove users from a group.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @Argument(help: "One or more user names.") var users: [String]
        func validate() throws { if users.isEmpty { throw ValidationError("Name at least one user.") } }
        func run() async throws {
            try await runClient {
                let client = options.client
                let id = try await client.groupID(named: group)
                for user in users {
                    try await client.call(.DELETE, "\(roles3)/unassign", body: ["username": .string(user), "role_id": .int(id)])
                    print("Removed \(user) from \(group).")
                }
            }
        }
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a group a permission on experiments or models.",
            discussion: "Example: reprise groups grant ml-leads EDIT --experiment churn ; reprise groups grant readers DENY --model '*'")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @Argument(help: "READ, USE, EDIT, MANAGE, NO_PERMISSIONS or DENY.") var permission: String
        @OptionGroup var resource: ResourceOptions

        func run() async throws {
            try await runClient {
                let client = options.client
                let id = try await client.groupID(named: group)
                let (type, pattern) = try await resource.resolve(client)
                let r = try await client.call(
                    .POST, "\(roles3)/permissions/add",
                    body: [
                        "role_id": .int(id), "resource_type": .string(type), "resource_pattern": .string(pattern),
                        "permission": .string(permission.uppercased()),
                    ])
                guard let row = r["role_permission"] else { throw RepriseClientError.malformed("role_permission") }
                print("Group \(group) now has \(GroupsCommand.describeGrant(try RepriseCore.Grant(rolePermission: row))).")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take back a group's grant on a resource.")
        @OptionGroup var options: ClientOptions
        @Argument var group: String
        @OptionGroup var resource: ResourceOptions

        func run() async throws {
            try await runClient {
                let client = options.client
                let id = try await client.groupID(named: group)
                let (type, pattern) = try await resource.resolve(client)
                let r = try await client.call(.GET, "\(roles3)/permissions/list", query: [("role_id", String(id))])
                let grants = try r.wireArray("role_permissions").map(RepriseCore.Grant.init(rolePermission:))
                guard let grant = grants.first(where: { $0.resourceType.rawValue == type && $0.pattern == pattern }) else {
                    throw CLIError("group \(group) holds no grant on \(pattern == "*" ? "every \(type)" : "\(type) \(pattern)"); `reprise groups show \(group)` lists its grants")
                }
                try await client.call(.DELETE, "\(roles3)/permissions/remove", body: ["role_permission_id": .int(grant.id)])
                print("Group \(group) no longer has \(GroupsCommand.describeGrant(grant)).")
            }
        }
    }
}
