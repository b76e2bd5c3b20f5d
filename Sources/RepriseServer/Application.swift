import Hummingbird
import Logging
import RepriseArtifacts
import RepriseCore

/// Builds the Hummingbird application that serves the REST API.
/// - Parameters:
///   - api: the routes and their dependencies.
///   - logger: the server's logger.
public func buildApplication(api: RepriseAPI, logger: Logger) -> some ApplicationProtocol {
    let responder = CallbackResponder<BasicRequestContext> { request, context in
        await api.respond(to: request, context: context)
    }
    return Application(
        responder: responder,
        configuration: .init(address: .hostname(api.config.host, port: api.config.port), serverName: nil),
        logger: logger)
}
