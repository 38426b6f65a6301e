using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Mvc;
using Tracker.Web.Account;

namespace Microsoft.Extensions.Hosting;

public static class AccountExtensions
{
    /// <summary>Cookie sign-in: the cookie is HttpOnly, same-site and expires with the API's access token.</summary>
    public static IHostApplicationBuilder AddCookieSignIn(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(options =>
            {
                options.Cookie.Name = "tracker.session";
                options.Cookie.HttpOnly = true;
                options.Cookie.SameSite = SameSiteMode.Lax;
                options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
                options.LoginPath = CookieSession.LoginPath;
                options.AccessDeniedPath = CookieSession.LoginPath;
                options.SlidingExpiration = false;
            });
        builder.Services.AddAuthorization();
        builder.Services.AddCascadingAuthenticationState();
        return builder;
    }

    /// <summary>Maps <c>POST /account/logout</c>; a form posts it with its antiforgery token.</summary>
    public static WebApplication MapAccountEndpoints(this WebApplication app)
    {
        app.MapPost("/account/logout", static async (HttpContext context, [FromForm(Name = "signout")] string? signOut) =>
        {
            _ = signOut; // Bound from the form so that the antiforgery token is required.
            await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return TypedResults.LocalRedirect($"{CookieSession.LoginPath}?signedOut=true");
        });
        return app;
    }
}
