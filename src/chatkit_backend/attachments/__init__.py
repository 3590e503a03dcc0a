"""Attachments: bytes storage, upload rules, signed URLs and the upload endpoints."""
