using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Tracker.ApiService.Storage;

/// <summary>
/// PostgreSQL readiness: a connection from the shared pool answers <c>SELECT 1</c>. It replaces the Aspire
/// integration's check, which attaches the exception to its result, so the health service logged a full stack
/// trace on every probe for as long as the database was down (every few seconds per orchestrator probe). A failed
/// probe is still logged, as one line with the reason. Probes within a second share one query
/// (<see cref="SharedReadinessProbe"/>).
/// </summary>
internal sealed class PostgresReadinessCheck(NpgsqlDataSource dataSource, TimeProvider time) : IHealthCheck
{
    private readonly SharedReadinessProbe _probe = new(time);

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        _probe.RunAsync(token => QueryAsync(context.Registration.FailureStatus, token), cancellationToken);

    private async Task<HealthCheckResult> QueryAsync(HealthStatus failureStatus, CancellationToken cancellationToken)
    {
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception exception) when (exception is NpgsqlException or SocketException or TimeoutException or OperationCanceledException)
        {
            var reason = exception is PostgresException postgres ? $"{postgres.SqlState} {postgres.MessageText}" : exception.GetType().Name;
            return new HealthCheckResult(failureStatus, $"PostgreSQL does not answer ({reason}).");
        }
    }
}
