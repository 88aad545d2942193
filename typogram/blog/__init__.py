"""The blog: posts written in Markdown by staff, published now or at a set time, read by
everyone through the REST API, server-rendered pages, an Atom feed and the sitemap.

Reading order: ``model`` (the rules of posts and publishing), ``markdown`` (Markdown
to safe HTML and plain text), ``posts`` (public reads, cached), ``editing`` (staff
writes), ``services`` (building them from a platform).
"""
