import ArgumentParser
import RepriseCore

@main
struct Reprise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reprise",
        abstract: "Reprise: an MLflow-compatible experiment tracker whose results hold up as evidence.",
        version: RepriseVersion.string,
        subcommands: [ServerCommand.self, RunCommand.self, ReproduceCommand.self, RunbookCommand.self, DiffCommand.self, LineageCommand.self, DeployCommand.self, IncidentCommand.self, PolicyCommand.self, HashCommand.self, ArtifactsCommand.self, ModelsCommand.self, AuditCommand.self, BackupCommand.self, ImportCommand.self, ExportCommand.self, LoginCommand.self, LogoutCommand.self, WhoamiCommand.self, UsersCommand.self, GroupsCommand.self, TokensCommand.self]
    )
}
