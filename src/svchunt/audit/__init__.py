"""svchunt.audit"""
