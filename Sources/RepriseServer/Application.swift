import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import RepriseArtifacts
import RepriseCore

/// Builds the Hummingbird application that serves the REST API.
///
/// Connection-level bounds live here (see `ConnectionLimits`): an idle timeout between requests and
/// body chunks, a deadline for a request head once a connection is open or a response has ended
/// (slow-header clients), a cap on open connections (further clients wait in the kernel's backlog),
/// and MLflow-style JSON errors for requests the HTTP parser refuses (oversized URL or headers).
/// - Parameters:
///   - api: the routes and their dependencies.
///   - logger: the server's logger.
public func buildApplication(api: RepriseAPI, logger: Logger) throws -> some ApplicationProtocol {
    let responder = api.makeResponder()
    let limits = api.config.limits
    var configuration = ApplicationConfiguration(address: .hostname(api.config.host, port: api.config.port), serverName: nil)
    configuration.availableConnectionsDelegate = MaximumAvailableConnections(limits.maxConnections)
    let headTimeout = TimeAmount.seconds(limits.headerTimeoutSeconds)
    var server: HTTPServerBuilder = .http1(
        configuration: .init(
            additionalChannelHandlers: [HTTPParserErrorResponder(), RequestHeadDeadline(timeout: headTimeout)],
            idleTimeout: .seconds(limits.idleTimeoutSeconds),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: 64 * 1024, maxHeaderListSize: 64 * 1024, maxHeaderFieldCount: 200)))
    // HTTPS directly (`--ssl-certfile`/`--ssl-keyfile`), so credentials never cross a network in the
    // clear when no proxy terminates TLS in front of the server.
    if let tls = api.config.tls {
        let chain = try NIOSSLCertificate.fromPEMFile(tls.certificate).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: tls.key, format: .pem)
        var tlsConfiguration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        tlsConfiguration.minimumTLSVersion = .tlsv12
        server = try .tls(server, tlsConfiguration: tlsConfiguration)
    }
    return Application(
        responder: responder,
        server: server,
        configuration: configuration,
        logger: logger)
}

/// Closes a connection whose request head has not fully arrived `timeout` after the connection
/// opened or the previous response ended: a client trickling header bytes (slowloris) would
/// otherwise hold the connection until the idle timeout, since no parsed part resets it.
///
/// On the request path this only stores or clears a time: one timer per connection is rescheduled
/// when it fires, rather than a timer per request.
final class RequestHeadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    /// When the connection started waiting for a request head; nil while a request is in progress.
    var waitingSince: NIODeadline?
    var timer: Scheduled<Void>?

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        waitingSince = .now()
        arm(context, at: waitingSince! + timeout)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    /// Requests whose head has arrived and whose response has not ended (more than one when a
    /// client pipelines): the connection waits for a head only when none is in progress.
    var inProgress = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) {
            inProgress += 1
            waitingSince = nil
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            inProgress = max(0, inProgress - 1)
            if inProgress == 0 {  // keep-alive: the next head has a deadline too
                let now = NIODeadline.now()
                waitingSince = now
                if timer == nil { arm(context, at: now + timeout) }
            }
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            guard let since = waitingSince else { return }  // a request is in progress; its end re-arms
            let due = since + timeout
            if NIODeadline.now() >= due {
                context.close(promise: nil)
            } else {
                arm(context, at: due)
            }
        }
    }
}

/// Answers a request the HTTP parser refused (URL or headers over the limit, malformed syntax) with
/// MLflow's JSON error envelope and closes the connection, instead of an empty 400.
final class HTTPParserErrorResponder: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    var inRequest = false
    var answered = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { inRequest = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { inRequest = false }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !inRequest, !answered else {
            context.fireErrorCaught(error)
            return
        }
        answered = true
        let tooLarge = parserError == .headerOverflow
        let status: HTTPResponse.Status = tooLarge ? .requestHeaderFieldsTooLarge : .badRequest
        let message =
            tooLarge
            ? "The request URL or headers are larger than the server accepts (64 KiB). Send large inputs in a JSON body instead."
            : "Malformed HTTP request."
        let envelope = RepriseError(tooLarge ? .invalidParameterValue : .badRequest, message).envelope.serialized()
        let body = context.channel.allocator.buffer(bytes: envelope)
        let head = HTTPResponse(
            status: status,
            headerFields: [
                .contentType: "application/json", .contentLength: "\(body.readableBytes)", .connection: "close",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
