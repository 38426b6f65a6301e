namespace Tracker.ApiService.Auth;

/// <summary>The two ways in: owners with a JWT, ingest with an API key. Endpoint groups name one of these.</summary>
public static class AuthPolicies
{
    /// <summary>JWT bearer: analytics and key management.</summary>
    public const string Client = "client";

    /// <summary>API key: sending activity logs.</summary>
    public const string Ingest = "ingest";
}
