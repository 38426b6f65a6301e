using System.Net.Sockets;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace Tracker.ApiService.Storage;

/// <summary>
/// PostgreSQL readiness: a connection from the shared pool answers <c>SELECT 1</c>. It replaces the Aspire
/// integration's check, which attaches the exception to its result, so the health service logged a full stack
/// trace on every probe for as long as the database was down (every few seconds per orchestrator probe). A failed
/// probe is still logged, as one line with the reason.
/// </summary>
internal sealed class PostgresReadinessCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
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
            return new HealthCheckResult(context.Registration.FailureStatus, $"PostgreSQL does not answer ({reason}).");
        }
    }
}
