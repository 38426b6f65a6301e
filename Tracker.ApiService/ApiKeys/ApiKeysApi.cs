using System.Security.Claims;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Tracker.ApiService.Auth;
using Tracker.ApiService.Http;
using Tracker.ApiService.RateLimiting;
using Tracker.Data;
using Tracker.Data.Entities;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// <c>/api/v1/keys</c>: a client lists, creates and revokes its own keys. Every query is filtered by the caller's
/// client id, so another client's key is simply not found.
/// </summary>
public static class ApiKeysApi
{
    // A repeated DELETE this soon after the revocation announces it again (the first may not have); later ones do not,
    // so that repeating one cannot make every instance forget every key it remembers at will.
    private static readonly TimeSpan RetriedRevocationWindow = TimeSpan.FromMinutes(1);

    /// <summary>A bound on what one client can accumulate; revoked keys do not count.</summary>
    public const int MaxActiveKeysPerClient = 50;

    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder routes)
    {
        var group = routes.MapGroup("/api/v1/keys").WithTags("API keys").RequireAuthorization(AuthPolicies.Client)
            .RequireTrackerRateLimiting(RateLimitPolicies.Usage);

        group.MapGet("/", ListAsync)
            .WithName("ListApiKeys")
            .WithSummary("List your API keys")
            .WithDescription("Every key of the caller, newest first, with its 8-character prefix; never the key or its hash.");

        group.MapPost("/", CreateAsync)
            .WithName("CreateApiKey")
            .WithSummary("Create an API key")
            .WithDescription($"The key is in the answer this once; only its hash is kept. At most {MaxActiveKeysPerClient} active keys per client.")
            .ProducesProblem(StatusCodes.Status409Conflict);

        group.MapDelete("/{id:guid}", RevokeAsync)
            .WithName("RevokeApiKey")
            .WithSummary("Revoke an API key")
            .WithDescription("The key stops working on every instance within a second; it stays listed, with revokedAt, for audit.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        // Lets a key holder check the key works and see which one it is, without sending any data.
        routes.MapGet("/api/v1/keys/current", CurrentAsync)
            .WithTags("API keys")
            .RequireAuthorization(AuthPolicies.Ingest)
            .RequireTrackerRateLimiting(RateLimitPolicies.Ingest)
            .WithName("GetCurrentApiKey")
            .WithSummary("Check an API key")
            .WithDescription("Authenticated with the API key itself; answers which of the client's keys it is.");

        return routes;
    }

    private static async Task<Results<Ok<Envelope<ApiKeyView>>, ProblemHttpResult>> CurrentAsync(
        ClaimsPrincipal user, TrackerDbContext db, CancellationToken cancellationToken)
    {
        var clientId = user.GetClientId();
        var keyId = Guid.Parse(user.FindFirstValue(ClaimsPrincipalExtensions.ApiKeyIdClaim)!);
        var key = await db.ApiKeys.AsNoTracking()
            .Where(candidate => candidate.Id == keyId && candidate.ClientId == clientId)
            .Select(candidate => new ApiKeyView(candidate.Id, candidate.Name, candidate.Prefix, candidate.CreatedAt, candidate.LastUsedAt, candidate.RevokedAt))
            .FirstOrDefaultAsync(cancellationToken);
        return key is null
            ? TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "API key not found.", detail: "The key was removed.")
            : TypedResults.Ok(Envelope.Of("API key retrieved successfully", key));
    }

    private static async Task<Ok<Envelope<List<ApiKeyView>>>> ListAsync(
        ClaimsPrincipal user, TrackerDbContext db, CancellationToken cancellationToken)
    {
        var clientId = user.GetClientId();
        var keys = await db.ApiKeys.AsNoTracking()
            .Where(key => key.ClientId == clientId)
            .OrderByDescending(key => key.CreatedAt)
            .Select(key => new ApiKeyView(key.Id, key.Name, key.Prefix, key.CreatedAt, key.LastUsedAt, key.RevokedAt))
            .ToListAsync(cancellationToken);
        return TypedResults.Ok(Envelope.Of("API keys retrieved successfully", keys));
    }

    private static async Task<Results<Created<Envelope<CreatedApiKey>>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        CreateApiKeyRequest request, ClaimsPrincipal user, TrackerDbContext db, TimeProvider time, CancellationToken cancellationToken)
    {
        var name = request.Name?.Trim();
        if (string.IsNullOrEmpty(name) || name.Length > ApiKeyIssuer.NameMaxLength)
        {
            return TypedResults.ValidationProblem(
                new Dictionary<string, string[]> { ["name"] = [$"Name is required: 1 to {ApiKeyIssuer.NameMaxLength} characters (leading and trailing spaces are ignored)."] },
                detail: "The key was not created; see errors.");
        }

        var clientId = user.GetClientId();
        var now = time.GetUtcNow();
        // Count and insert under a lock on the client's row, so concurrent creations are decided one after
        // another: counting alone would let each of them see room for itself. Retried whole on a transient
        // failure, as the execution strategy requires of a transaction.
        var created = await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            await using var transaction = await db.Database.BeginTransactionAsync(cancellationToken);
            await db.Database.ExecuteSqlAsync($"SELECT 1 FROM clients WHERE id = {clientId} FOR NO KEY UPDATE", cancellationToken);
            var active = await db.ApiKeys.CountAsync(key => key.ClientId == clientId && key.RevokedAt == null, cancellationToken);
            if (active >= MaxActiveKeysPerClient)
            {
                return default((string Secret, ApiKey Row)?);
            }

            var issued = ApiKeyIssuer.Create(clientId, name, now);
            db.ApiKeys.Add(issued.Row);
            await db.SaveChangesAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return issued;
        });
        if (created is not { } newKey)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status409Conflict,
                title: "Too many active keys.",
                detail: $"A client can hold at most {MaxActiveKeysPerClient} active keys; revoke one first.");
        }

        var (secret, row) = newKey;
        return TypedResults.Created(
            (string?)null, Envelope.Of("API key created successfully", new CreatedApiKey(row.Id, row.Name, row.Prefix, row.CreatedAt, secret)));
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(
        Guid id, ClaimsPrincipal user, TrackerDbContext db, ApiKeyStore store, TimeProvider time, CancellationToken cancellationToken)
    {
        var clientId = user.GetClientId();
        var key = await db.ApiKeys.AsNoTracking()
            .Where(candidate => candidate.Id == id && candidate.ClientId == clientId)
            .Select(candidate => new { candidate.KeyHash, candidate.RevokedAt })
            .FirstOrDefaultAsync(cancellationToken);
        if (key is null)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status404NotFound, title: "API key not found.", detail: $"You have no API key with id {id}.");
        }

        var now = time.GetUtcNow();
        if (key.RevokedAt is null)
        {
            await db.ApiKeys
                .Where(candidate => candidate.Id == id && candidate.ClientId == clientId && candidate.RevokedAt == null)
                .ExecuteUpdateAsync(setters => setters.SetProperty(candidate => candidate.RevokedAt, now), cancellationToken);
        }

        // Also for an already revoked key: a retried DELETE must not leave a stale cache entry behind, nor, within a
        // minute of the revocation, a key other instances remember (the first attempt may have ended before it
        // announced the revocation). Not once the client has left: the revocation is committed.
        var recent = key.RevokedAt is not { } revokedAt || now - revokedAt < RetriedRevocationWindow;
        await store.InvalidateAsync(key.KeyHash, announce: recent, CancellationToken.None);
        return TypedResults.NoContent();
    }
}
